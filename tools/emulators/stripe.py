"""A Stripe emulator for tests and local runs: the PaymentIntent and refund calls checkout uses, with state, and
signed webhooks. Written from PLATFORMS.md (stripe-mock is stateless and ignores idempotency, so it cannot do this).

    python -m tools.emulators.stripe --port 12111 --webhook-url http://127.0.0.1:8003/webhooks/stripe \
        --webhook-secret whsec_dev_only

- `POST /v1/payment_intents` (form: amount, currency, payment_method, confirm, metadata[...]): with confirm, the
  intent goes to `processing` and a webhook later says `payment_intent.succeeded`, or `payment_failed`. Test
  payment methods `pm_card_chargeDeclined` / `pm_card_chargeDeclinedInsufficientFunds` are declined at once
  (402 card_error, as Stripe does) and also get a `payment_failed` webhook.
- `POST /v1/refunds` (form: payment_intent, amount), `GET /v1/payment_intents/{id}`.
- `Idempotency-Key`: the first response (status and body) is replayed for the same key and parameters; other
  parameters -> 400 idempotency_error; a request while the first with that key is still running -> 409 and
  nothing saved; a request that failed validation saves nothing.
- Control (not Stripe): `POST /_emulator/config` {decline_all, fail_async, duplicates, latency_s, webhook_delay_s},
  `GET /_emulator/events`, `POST /_emulator/events/{id}/resend`, `GET /_emulator/stats`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "Your card has insufficient funds."),
}
RETRY_DELAYS_S = (0.2, 0.5, 1, 2, 5, 10)


def sign(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


@dataclass
class Config:
    decline_all: bool = False  # every new charge is declined at once
    fail_async: bool = False  # new charges go to processing, then fail by webhook
    duplicates: int = 0  # extra deliveries of every webhook event
    latency_s: float = 0.0  # time each API call takes (to make concurrent same-key requests collide)
    webhook_delay_s: float = 0.05
    lose_webhooks: bool = False  # charges settle, but their events are never delivered (kept for resend)


@dataclass
class State:
    webhook_url: str | None
    webhook_secret: str
    config: Config = field(default_factory=Config)
    intents: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    idempotent: dict[str, tuple[str, int, dict]] = field(default_factory=dict)  # key -> (params, status, body)
    in_flight: set[str] = field(default_factory=set)
    events: dict[str, dict] = field(default_factory=dict)
    deliveries: int = 0
    charges: int = 0  # intents created (each a charge attempt)


def _error(status: int, kind: str, message: str, **extra) -> tuple[int, dict]:
    return status, {"error": {"type": kind, "message": message, **extra}}


def create_app(webhook_url: str | None = None, webhook_secret: str = "whsec_dev_only") -> FastAPI:  # noqa: S107
    app = FastAPI(title="Stripe emulator")
    state = State(webhook_url, webhook_secret)
    app.state.stripe = state
    tasks: set[asyncio.Task] = set()

    def spawn(coro) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def deliver(event: dict) -> None:
        body = json.dumps(event).encode()
        async with httpx.AsyncClient(timeout=5) as client:
            for delay in (0, *RETRY_DELAYS_S):
                await asyncio.sleep(delay)
                headers = {"Stripe-Signature": sign(state.webhook_secret, body), "Content-Type": "application/json"}
                with contextlib.suppress(httpx.HTTPError):
                    state.deliveries += 1
                    if (await client.post(state.webhook_url, content=body, headers=headers)).status_code < 300:
                        return

    def emit(kind: str, intent: dict) -> None:
        event = {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": dict(intent)},
        }
        state.events[event["id"]] = event
        if state.webhook_url and not state.config.lose_webhooks:
            for _ in range(1 + state.config.duplicates):
                spawn(deliver(event))

    async def settle_later(intent: dict, fail: bool) -> None:
        await asyncio.sleep(state.config.webhook_delay_s)
        if fail:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {"code": "card_declined", "message": "The bank declined the payment."}
            emit("payment_intent.payment_failed", intent)
        else:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            emit("payment_intent.succeeded", intent)

    def create_intent(form: dict[str, str]) -> tuple[int, dict]:
        try:
            amount = int(form["amount"])
        except (KeyError, ValueError):
            return _error(400, "invalid_request_error", "Missing or invalid required param: amount.", param="amount")
        if amount <= 0 or not form.get("currency"):
            return _error(400, "invalid_request_error", "Invalid amount or currency.", param="amount")
        intent = {
            "id": f"pi_{secrets.token_hex(12)}",
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": form["currency"].lower(),
            "payment_method": form.get("payment_method"),
            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "status": "requires_payment_method" if not form.get("payment_method") else "requires_confirmation",
            "last_payment_error": None,
            "refunded": 0,
        }
        state.intents[intent["id"]] = intent
        state.charges += 1
        if form.get("confirm") == "true" and intent["payment_method"]:
            decline = DECLINES.get(intent["payment_method"])
            if decline is None and state.config.decline_all:
                decline = ("card_declined", "Your card was declined.")
            if decline:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {"code": decline[0], "message": decline[1]}
                emit("payment_intent.payment_failed", intent)
                return _error(402, "card_error", decline[1], code=decline[0], payment_intent=dict(intent))
            intent["status"] = "processing"
            spawn(settle_later(intent, state.config.fail_async))
        return 200, dict(intent)

    def create_refund(form: dict[str, str]) -> tuple[int, dict]:
        intent = state.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return _error(400, "invalid_request_error", "No such payment_intent.", param="payment_intent")
        amount = int(form.get("amount") or intent["amount"] - intent["refunded"])
        if intent["status"] != "succeeded":
            return _error(400, "invalid_request_error", f"The PaymentIntent is {intent['status']}.")
        if amount <= 0 or amount > intent["amount"] - intent["refunded"]:
            return _error(400, "invalid_request_error", "The refund amount is greater than the unrefunded amount.")
        intent["refunded"] += amount
        refund = {"id": f"re_{secrets.token_hex(12)}", "object": "refund", "amount": amount, "status": "succeeded"}
        refund["payment_intent"] = intent["id"]
        state.refunds[refund["id"]] = refund
        return 200, refund

    async def idempotent(request: Request, operation) -> JSONResponse:
        if not request.headers.get("authorization", "").startswith("Bearer sk_"):
            return JSONResponse(_error(401, "invalid_request_error", "Invalid API Key provided.")[1], 401)
        form = dict(parse_qsl((await request.body()).decode()))  # Stripe's API is form-encoded
        key = request.headers.get("idempotency-key")
        params = json.dumps([request.url.path, sorted(form.items())])
        if key is not None:
            if key in state.in_flight:
                status, body = _error(409, "idempotency_error", "Another request with this key is in progress.")
                return JSONResponse(body, status)
            if key in state.idempotent:
                saved_params, status, body = state.idempotent[key]
                if saved_params != params:
                    message = "Keys for idempotent requests can only be used with the same parameters."
                    return JSONResponse(_error(400, "idempotency_error", message)[1], 400)
                return JSONResponse(body, status, headers={"Idempotent-Replayed": "true"})
            state.in_flight.add(key)
        try:
            await asyncio.sleep(state.config.latency_s)
            status, body = operation(form)
            if key is not None and not (status == 400 and body["error"]["type"] == "invalid_request_error"):
                state.idempotent[key] = (params, status, body)
            return JSONResponse(body, status)
        finally:
            state.in_flight.discard(key)

    @app.post("/v1/payment_intents")
    async def payment_intents(request: Request) -> JSONResponse:
        return await idempotent(request, create_intent)

    @app.get("/v1/payment_intents/{intent_id}")
    async def get_intent(intent_id: str) -> JSONResponse:
        intent = state.intents.get(intent_id)
        if intent is None:
            return JSONResponse(_error(404, "invalid_request_error", "No such payment_intent.")[1], 404)
        return JSONResponse(intent)

    @app.post("/v1/refunds")
    async def refunds(request: Request) -> JSONResponse:
        return await idempotent(request, create_refund)

    @app.post("/_emulator/config")
    async def configure(request: Request) -> dict:
        for name, value in (await request.json()).items():
            setattr(state.config, name, value)
        return vars(state.config)

    @app.get("/_emulator/events")
    async def events() -> list[dict]:
        return list(state.events.values())

    @app.post("/_emulator/events/{event_id}/resend")
    async def resend(event_id: str) -> dict:
        spawn(deliver(state.events[event_id]))
        return {"resent": event_id}

    @app.get("/_emulator/stats")
    async def stats() -> dict:
        return {"charges": state.charges, "deliveries": state.deliveries, "refunds": len(state.refunds)}

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m tools.emulators.stripe")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", default="whsec_dev_only")
    args = parser.parse_args()
    uvicorn.run(create_app(args.webhook_url, args.webhook_secret), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
