"""The tracking aggregator's webhook (AfterShip-style), authenticated by its signature on the raw body."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import ValidationError

from services.tracking import handlers
from services.tracking.api.schemas import AfterShipWebhook, WebhookOutcome
from services.tracking.domain.timeline import Checkpoint
from shared.errors import NotFound, Unauthorized, Unprocessable
from shared.http import PROBLEM_RESPONSES, Engine
from shared.signatures import valid_base64_hmac

router = APIRouter(prefix="/webhooks", responses=PROBLEM_RESPONSES)


@router.post(
    "/aftership",
    tags=["webhooks"],
    summary="Carrier checkpoints for a shipment; a redelivered event_id is a no-op, an unknown number is kept (404)",
)
async def aftership(request: Request, engine: Engine) -> WebhookOutcome:
    body = await request.body()
    secret = request.app.state.settings.aftership_webhook_secret.get_secret_value()
    if not valid_base64_hmac(secret, body, request.headers.get("aftership-hmac-sha256")):
        raise Unauthorized("invalid aftership-hmac-sha256 signature")
    try:
        hook = AfterShipWebhook.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise Unprocessable("the tracking event is malformed", errors=errors) from exc
    msg = hook.msg
    scans = [
        Checkpoint(c.checkpoint_time, c.tag, c.message, c.location or "", c.country_iso3 or "") for c in msg.checkpoints
    ] or [Checkpoint(datetime.fromtimestamp(hook.ts, UTC), msg.tag)]  # a status without a scan still counts
    async with engine.begin() as conn:
        outcome = await handlers.record_carrier_event(
            conn,
            event_id=hook.event_id,
            tracking_number=msg.tracking_number,
            scans=scans,
            body=hook.model_dump(mode="json"),
        )
    if outcome == "unmatched":
        raise NotFound(f"no shipment has tracking number {msg.tracking_number}; the event is kept for ops")
    return WebhookOutcome(outcome=outcome)
