"""The end customer's tracking page: no login, rate-limited per client IP, and nothing personal beyond the
destination country (no name, address, email or phone; carrier messages and scan locations, which can name the
recipient or the street, are left out as well)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.tracking.adapters.tables import checkpoints, shipments
from services.tracking.api.rate_limit import TokenBuckets, retry_after
from services.tracking.api.schemas import PublicCheckpoint, PublicTracking
from shared.errors import NotFound
from shared.http import PROBLEM_RESPONSES, Engine, problem

router = APIRouter(responses=PROBLEM_RESPONSES)


def _too_many(request: Request) -> JSONResponse | None:
    state = request.app.state
    if not hasattr(state, "track_buckets"):
        settings = state.settings
        state.track_buckets = TokenBuckets(settings.track_requests_per_second, settings.track_burst)
    # The peer address: behind a proxy, the proxy must be trusted to set it (uvicorn --forwarded-allow-ips).
    client = request.client.host if request.client else "unknown"
    if not (wait := state.track_buckets.take(client)):
        return None
    response = problem(429, "Too many requests", "too many tracking requests from this address; retry later")
    response.headers["Retry-After"] = retry_after(wait)
    return response


@router.get(
    "/track/{tracking_number}",
    tags=["public"],
    summary="Where a parcel is: carrier, status and timeline, for the end customer (no login)",
    response_model=PublicTracking,
    responses={429: {"description": "rate limited; Retry-After says when to come back"}},
)
async def track(tracking_number: str, request: Request, engine: Engine):
    if limited := _too_many(request):
        return limited
    async with engine.connect() as conn:
        shipment = (await conn.execute(select(shipments).where(shipments.c.tracking_number == tracking_number))).first()
        if shipment is None:
            raise NotFound("no parcel has this tracking number")
        scans = (
            await conn.execute(
                select(checkpoints.c.checkpoint_at, checkpoints.c.status, checkpoints.c.country)
                .where(checkpoints.c.shipment_id == shipment.id)
                .order_by(checkpoints.c.checkpoint_at, checkpoints.c.id)
            )
        ).all()
    return PublicTracking(
        tracking_number=shipment.tracking_number,
        carrier=shipment.carrier,
        tracking_url=shipment.tracking_url,
        status=shipment.status,
        shipped_at=shipment.shipped_at,
        destination_country=shipment.destination_country,
        timeline=[PublicCheckpoint(at=s.checkpoint_at, status=s.status, country=s.country) for s in scans],
    )
