"""The tracking service's HTTP API and use cases on the real PostgreSQL, with a real SMTP server (aiosmtpd) in the
test process. The app runs in process (no Kafka): the events it publishes are read from its outbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from services.tracking import handlers
from services.tracking.adapters.mail import SmtpMailer
from services.tracking.adapters.tables import (
    carrier_events,
    checkpoints,
    emails,
    fulfillments,
    metadata,
    outbox,
    shipments,
)
from services.tracking.api import public, routes, webhooks
from shared.auth import mint_token
from shared.events import (
    Address,
    OrderPaid,
    OrderPaidPayload,
    PayableLine,
    PayableOrderPayload,
    ReshipmentApproved,
    ReshipmentApprovedPayload,
    ShippingChoice,
)
from shared.money import Money
from shared.service import ServiceDefinition, create_app
from shared.signatures import hmac_sha256_base64
from tests.conftest import settings_for
from tools.stack import free_ports

SECRET = "test-aftership-secret"


class Inbox:
    """An SMTP handler that keeps what it accepts and can refuse the next messages with a transient error."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse_next = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse_next:
            self.refuse_next -= 1
            return "451 4.3.0 mailbox busy, try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="module")
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_ports(1)[0])
    controller.start()
    yield controller
    controller.stop()


@dataclass
class Tracking:
    client: httpx.AsyncClient
    engine: object
    settings: object
    inbox: Inbox
    merchant: str

    def auth(self, role: str = "ops", merchant: str | None = None) -> dict[str, str]:
        token = mint_token(
            self.settings.auth_jwt_secret.get_secret_value(),
            sub=f"{role}-user",
            merchant_id=merchant or self.merchant,
            role=role,
        )
        return {"Authorization": f"Bearer {token}"}

    async def ops(self, method: str, path: str, **kw) -> httpx.Response:
        return await self.client.request(method, path, headers={**self.auth(), **kw.pop("headers", {})}, **kw)

    async def drain(self) -> int:
        """Run the email sender until nothing is due; how many rows it handled."""
        mailer, handled = SmtpMailer(self.settings), 0
        while True:
            async with self.engine.begin() as conn:
                if not await handlers.send_next_email(conn, mailer, self.settings):
                    return handled
            handled += 1


@pytest.fixture
async def tracking(migrated, engine_for, smtp):
    settings = settings_for(
        "tracking",
        migrated,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        email_retry_base_seconds=0,
        email_max_attempts=3,
        aftership_webhook_secret=SECRET,
        track_burst=3,
        track_requests_per_second=0.01,
        email_from="shipping@agent.example",
    )
    app = create_app(
        ServiceDefinition(
            settings=settings,
            metadata=metadata,
            routers=[routes.router, webhooks.router, public.router],
            description="tracking under test",
        )
    )
    app.state.engine = engine_for("tracking")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tracking") as client:
        yield Tracking(client, app.state.engine, settings, smtp.handler, f"m-{uuid.uuid4().hex[:8]}")


def payable(
    *, email_address: str | None = "ana@example.com", locale: str | None = "en", notified_by_store: bool = False
) -> PayableOrderPayload:
    usd = Money.of("4.20", "USD")
    return PayableOrderPayload(
        store_id="store-1",
        store_name="Bella Casa",
        order_name="#1001",
        currency="USD",
        lines=[
            PayableLine(
                catalog_variant_id="v1", sku="MUG-1", title="Blue mug", quantity=2, unit_cost=usd, unit_weight_grams=300
            )
        ],
        packaging=[
            PayableLine(
                catalog_variant_id="p1",
                sku="BOX-BRAND",
                title="Branded box",
                quantity=1,
                unit_cost=usd,
                unit_weight_grams=50,
            )
        ],
        shipping_address=Address(
            name="Ana Souza",
            address1="Rua Augusta 1500",
            city="Sao Paulo",
            zip="01304-001",
            country_code="BR",
            phone="+55 11 91234-5678",
        ),
        customer_email=email_address,
        customer_locale=locale,
        customer_notified_by_store=notified_by_store,
    )


SHIPPING = ShippingChoice(
    method_id="yun-direct",
    name="YunExpress Global Direct",
    carrier="YunExpress",
    price=Money.of("6.50", "USD"),
    delivery_days_min=7,
    delivery_days_max=12,
)


async def paid(t: Tracking, *, paid_at: datetime | None = None, **order) -> str:
    """An OrderPaid handled as the consumer would; returns the fulfillment id."""
    order_id = f"o-{uuid.uuid4().hex[:8]}"
    event = OrderPaid(
        merchant_id=t.merchant,
        order_id=order_id,
        occurred_at=paid_at or datetime.now(UTC),
        payload=OrderPaidPayload(
            payment_id=f"pay-{order_id}",
            method="balance",
            amount=Money.of("14.90", "USD"),
            shipping=SHIPPING,
            order=payable(**order),
        ),
    )
    async with t.engine.begin() as conn:
        await handlers.on_order_paid(conn, event)
        await handlers.on_order_paid(conn, event)  # redelivered: no second job
        return (await conn.execute(select(fulfillments.c.id).where(fulfillments.c.order_id == order_id))).scalar_one()


async def to_labelling(t: Tracking, job: str) -> None:
    for action, body in (("purchase", None), ("quality-check", {"passed": True}), ("pack", None)):
        response = await t.ops("POST", f"/v1/fulfillments/{job}/{action}", json=body)
        assert response.status_code == 200, response.text


async def shipped(t: Tracking, job: str, number: str | None = None) -> dict:
    """Through every step; returns the fulfillment as the ship action answered."""
    number = number or f"YT{uuid.uuid4().hex[:12].upper()}"
    await to_labelling(t, job)
    label = await t.ops(
        "POST", f"/v1/fulfillments/{job}/label", json={"carrier": "YunExpress", "tracking_number": number}
    )
    assert label.status_code == 200, label.text
    ship = await t.ops("POST", f"/v1/fulfillments/{job}/ship")
    assert ship.status_code == 200, ship.text
    return ship.json()


async def outbox_events(t: Tracking, event_type: str, order_id: str) -> list[dict]:
    async with t.engine.connect() as conn:
        values = (await conn.execute(select(outbox.c.value).where(outbox.c.key == order_id))).scalars().all()
    return [e for e in map(json.loads, values) if e["event_type"] == event_type]


async def shipment_of(t: Tracking, job: str) -> dict:
    async with t.engine.connect() as conn:
        row = (await conn.execute(select(fulfillments.c.order_id).where(fulfillments.c.id == job))).one()
    [event] = await outbox_events(t, "OrderShipped", row.order_id)
    return event["payload"]


async def email_of(t: Tracking, shipment_id: str):
    async with t.engine.connect() as conn:
        return (await conn.execute(select(emails).where(emails.c.shipment_id == shipment_id))).one()


# --- fulfillment jobs ------------------------------------------------------------------------------------------


async def test_a_paid_order_opens_one_job_carrying_what_the_warehouse_needs(tracking):
    job = await paid(tracking)
    detail = (await tracking.ops("GET", f"/v1/fulfillments/{job}")).json()
    assert detail["step"] == "purchasing" and detail["store_name"] == "Bella Casa"
    assert detail["lines"] == [{"sku": "MUG-1", "title": "Blue mug", "quantity": 2}]
    assert detail["packaging"] == [{"sku": "BOX-BRAND", "title": "Branded box", "quantity": 1}]
    assert detail["shipping_address"]["country_code"] == "BR"
    assert detail["shipping"]["carrier"] == "YunExpress" and detail["shipping_method"] == "YunExpress Global Direct"
    assert [h["detail"] for h in detail["history"]] == ["paid: buy from the factory"]
    other = tracking.auth("merchant", merchant="someone-else")
    assert (await tracking.client.get(f"/v1/fulfillments/{job}", headers=other)).status_code == 404


async def test_steps_through_the_api_and_a_step_out_of_order_is_409_naming_the_current_step(tracking):
    job = await paid(tracking)
    early = await tracking.ops("POST", f"/v1/fulfillments/{job}/ship")
    assert early.status_code == 409 and early.headers["content-type"] == "application/problem+json"
    assert "is purchasing" in early.json()["detail"] and early.json()["current_status"] == "purchasing"
    await tracking.ops("POST", f"/v1/fulfillments/{job}/purchase")
    failed = await tracking.ops(
        "POST", f"/v1/fulfillments/{job}/quality-check", json={"passed": False, "notes": "cracked handle"}
    )
    assert failed.json()["step"] == "purchasing"
    await to_labelling(tracking, job)
    missing = await tracking.ops("POST", f"/v1/fulfillments/{job}/label", json={"carrier": "YunExpress"})
    assert missing.status_code == 422
    unlabelled = await tracking.ops("POST", f"/v1/fulfillments/{job}/ship")
    assert unlabelled.status_code == 409
    history = (await tracking.ops("GET", f"/v1/fulfillments/{job}")).json()["history"]
    assert any("cracked handle" in h["detail"] for h in history)
    assert (
        await tracking.client.post(f"/v1/fulfillments/{job}/purchase", headers=tracking.auth("merchant"))
    ).status_code == 403
    assert (await tracking.ops("POST", "/v1/fulfillments/nope/purchase")).status_code == 404


async def test_bulk_actions_report_each_item(tracking):
    ready, also_ready, behind = await paid(tracking), await paid(tracking), await paid(tracking)
    await tracking.ops("POST", f"/v1/fulfillments/{behind}/purchase")
    body = {"items": [{"fulfillment_id": j} for j in (ready, also_ready, behind, "missing")]}
    result = (await tracking.ops("POST", "/v1/fulfillments/bulk/purchase", json=body)).json()["items"]
    assert [(r["status"], r["step"]) for r in result] == [
        (200, "quality_check"),
        (200, "quality_check"),
        (409, "quality_check"),
        (404, None),
    ]
    assert "is quality_check" in result[2]["detail"]
    checks = {"items": [{"fulfillment_id": ready, "passed": True}, {"fulfillment_id": also_ready}]}
    result = (await tracking.ops("POST", "/v1/fulfillments/bulk/quality-check", json=checks)).json()["items"]
    assert [r["status"] for r in result] == [200, 422]
    assert (await tracking.ops("POST", "/v1/fulfillments/bulk/teleport", json=body)).status_code == 422
    queue = (await tracking.ops("GET", "/v1/fulfillments", params={"step": "packing", "limit": 250})).json()["items"]
    assert ready in {j["id"] for j in queue}


async def test_the_overdue_list_holds_unshipped_jobs_paid_beyond_the_handling_time(tracking):
    long_ago = datetime.now(UTC) - timedelta(hours=tracking.settings.handling_time_hours + 1)
    late, recent, late_but_shipped = await paid(tracking, paid_at=long_ago), await paid(tracking), None
    late_but_shipped = await paid(tracking, paid_at=long_ago)
    await shipped(tracking, late_but_shipped)
    ids, cursor = [], None
    while True:
        page = (await tracking.ops("GET", "/v1/fulfillments/overdue", params={"limit": 2, "cursor": cursor})).json()
        ids += [j["id"] for j in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert late in ids and recent not in ids and late_but_shipped not in ids


async def test_a_reshipment_opens_a_linked_job_whose_shipment_says_so(tracking):
    first = await paid(tracking)
    async with tracking.engine.connect() as conn:
        order_id = (await conn.execute(select(fulfillments.c.order_id).where(fulfillments.c.id == first))).scalar_one()
    event = ReshipmentApproved(
        merchant_id=tracking.merchant,
        order_id=order_id,
        payload=ReshipmentApprovedPayload(
            reshipment_id="rs-1", reason="lost in transit", order=payable(), shipping=SHIPPING
        ),
    )
    async with tracking.engine.begin() as conn:
        await handlers.on_reshipment_approved(conn, event)
        await handlers.on_reshipment_approved(conn, event)
        again = (
            await conn.execute(
                select(fulfillments).where(fulfillments.c.reshipment_id == "rs-1", fulfillments.c.order_id == order_id)
            )
        ).all()
    assert len(again) == 1 and again[0].reship_of == first
    await shipped(tracking, first)
    await shipped(tracking, again[0].id)
    events = await outbox_events(tracking, "OrderShipped", order_id)
    assert sorted((e["payload"]["reshipment_id"] or "") for e in events) == ["", "rs-1"]
    assert all(e["payload"]["store_id"] == "store-1" for e in events)


# --- the customer's email --------------------------------------------------------------------------------------


async def test_the_email_is_sent_once_though_ship_is_retried_and_two_senders_race(tracking):
    address = f"ana-{uuid.uuid4().hex[:6]}@example.com"
    job = await paid(tracking, email_address=address)
    await to_labelling(tracking, job)
    await tracking.ops(
        "POST", f"/v1/fulfillments/{job}/label", json={"carrier": "YunExpress", "tracking_number": "YT0001A"}
    )
    key = {"Idempotency-Key": f"ship-{job}"}
    first = await tracking.ops("POST", f"/v1/fulfillments/{job}/ship", headers=key)
    replay = await tracking.ops("POST", f"/v1/fulfillments/{job}/ship", headers=key)
    assert first.status_code == replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    retried = await tracking.ops("POST", f"/v1/fulfillments/{job}/ship")
    assert retried.status_code == 409 and "is shipped" in retried.json()["detail"]

    # Two senders at once over every due email of this database: none goes out twice.
    handled = await asyncio.gather(tracking.drain(), tracking.drain())
    assert sum(handled) >= 1
    await tracking.drain()
    [message] = tracking.inbox.to(address)
    sent_ids = [m["Message-ID"] for m in tracking.inbox.messages]
    assert len(sent_ids) == len(set(sent_ids))
    shipment = await shipment_of(tracking, job)
    assert message["Message-ID"] == f"<shipment-{shipment['shipment_id']}@agent.example>"
    assert message["Subject"] == "Your order #1001 from Bella Casa is on its way"
    assert "Bella Casa" in message["From"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "YT0001A" in body and shipment["tracking_url"] in body and "Bella Casa" in body
    row = await email_of(tracking, shipment["shipment_id"])
    assert (row.status, row.attempts, row.sent_at is not None) == ("sent", 1, True)


async def test_a_refused_first_attempt_is_retried_and_delivered_once(tracking):
    address = f"joao-{uuid.uuid4().hex[:6]}@example.com.br"
    job = await paid(tracking, email_address=address, locale="pt-BR")
    await shipped(tracking, job)
    shipment = await shipment_of(tracking, job)
    tracking.inbox.refuse_next = 1
    await tracking.drain()  # first attempt refused (451), retried after the (zero) backoff
    [message] = tracking.inbox.to(address)
    assert message["Subject"] == "Seu pedido #1001 da Bella Casa está a caminho"
    assert "Código de rastreamento" in message.get_body(("plain",)).get_content()
    row = await email_of(tracking, shipment["shipment_id"])
    assert (row.status, row.attempts, row.language) == ("sent", 2, "pt-BR")
    assert "451" in row.last_error


async def test_a_server_that_keeps_refusing_ends_in_the_failure_list(tracking):
    address = f"zoe-{uuid.uuid4().hex[:6]}@example.com"
    job = await paid(tracking, email_address=address)
    await shipped(tracking, job)
    shipment = await shipment_of(tracking, job)
    tracking.inbox.refuse_next = tracking.settings.email_max_attempts
    await tracking.drain()
    row = await email_of(tracking, shipment["shipment_id"])
    assert (row.status, row.attempts) == ("failed", tracking.settings.email_max_attempts)
    failures = (await tracking.ops("GET", "/v1/email-failures", params={"limit": 250})).json()["items"]
    [mine] = [f for f in failures if f["shipment_id"] == shipment["shipment_id"]]
    assert mine["status"] == "failed" and "451" in mine["last_error"]
    assert tracking.inbox.to(address) == []


async def test_an_invalid_address_still_ships_and_lists_the_failure_for_its_merchant(tracking):
    job = await paid(tracking, email_address="ana at example dot com")
    assert (await shipped(tracking, job))["step"] == "shipped"
    shipment = await shipment_of(tracking, job)
    await tracking.drain()
    row = await email_of(tracking, shipment["shipment_id"])
    assert row.status == "failed" and "invalid customer email address" in row.last_error and row.attempts == 0
    own = (await tracking.client.get("/v1/email-failures", headers=tracking.auth("merchant"))).json()["items"]
    assert [f["shipment_id"] for f in own] == [shipment["shipment_id"]]
    assert "invalid customer email address" in own[0]["last_error"]
    other = await tracking.client.get("/v1/email-failures", headers=tracking.auth("merchant", merchant="another"))
    assert shipment["shipment_id"] not in {f["shipment_id"] for f in other.json()["items"]}


async def test_no_email_when_the_store_notifies_the_customer(tracking):
    address = f"bia-{uuid.uuid4().hex[:6]}@example.com"
    job = await paid(tracking, email_address=address, notified_by_store=True)
    await shipped(tracking, job)
    shipment = await shipment_of(tracking, job)
    await tracking.drain()
    row = await email_of(tracking, shipment["shipment_id"])
    assert row.status == "skipped" and "store platform" in row.last_error
    assert tracking.inbox.to(address) == []


# --- carrier tracking ------------------------------------------------------------------------------------------


def hook(number: str, tag: str, scans: list[tuple[str, str]], event_id: str | None = None, **scan_fields) -> dict:
    return {
        "ts": 1767225600,
        "event": "tracking_update",
        "event_id": event_id or str(uuid.uuid4()),
        "msg": {
            "tracking_number": number,
            "tag": tag,
            "slug": "yunexpress",
            "checkpoints": [
                {"checkpoint_time": at, "tag": t, "message": f"{t} scan", **scan_fields} for at, t in scans
            ],
        },
    }


async def post_hook(t: Tracking, payload: dict, secret: str = SECRET) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await t.client.post(
        "/webhooks/aftership", content=body, headers={"aftership-hmac-sha256": hmac_sha256_base64(secret, body)}
    )


async def test_out_of_order_carrier_events_give_the_right_timeline_and_status(tracking):
    job = await paid(tracking)
    fulfillment = await shipped(tracking, job)
    number, shipment = fulfillment["tracking_number"], await shipment_of(tracking, job)
    delivered = hook(
        number, "Delivered", [("2026-01-01T08:00:00Z", "InfoReceived"), ("2026-01-05T14:00:00+00:00", "Delivered")]
    )
    in_transit = hook(
        number, "InTransit", [("2026-01-01T08:00:00Z", "InfoReceived"), ("2026-01-02T09:00:00", "InTransit")]
    )
    out_for_delivery = hook(number, "OutForDelivery", [("2026-01-05T07:00:00-03:00", "OutForDelivery")])
    for payload in (delivered, in_transit, out_for_delivery):
        response = await post_hook(tracking, payload)
        assert response.status_code == 200 and response.json()["outcome"] == "recorded", response.text
    assert (await post_hook(tracking, delivered)).json()["outcome"] == "duplicate"

    detail = (await tracking.ops("GET", f"/v1/shipments/{shipment['shipment_id']}")).json()
    assert [c["status"] for c in detail["timeline"]] == ["InfoReceived", "InTransit", "OutForDelivery", "Delivered"]
    assert detail["status"] == "Delivered"
    announced = await outbox_events(tracking, "ShipmentStatusChanged", fulfillment["order_id"])
    assert [e["payload"]["status"] for e in announced] == ["Delivered"]

    exception = hook(number, "Exception", [("2026-01-06T10:00:00Z", "Exception")])
    await post_hook(tracking, exception)
    announced = await outbox_events(tracking, "ShipmentStatusChanged", fulfillment["order_id"])
    assert [e["payload"]["status"] for e in announced] == ["Delivered", "Exception"]


async def test_a_bad_signature_is_401_and_stores_nothing(tracking):
    payload = hook("YTUNSIGNED1", "InTransit", [("2026-01-02T09:00:00Z", "InTransit")])
    for response in (
        await post_hook(tracking, payload, secret="wrong-secret"),
        await tracking.client.post("/webhooks/aftership", content=json.dumps(payload).encode()),
    ):
        assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
    async with tracking.engine.connect() as conn:
        stored = await conn.execute(select(func.count()).where(carrier_events.c.event_id == payload["event_id"]))
        assert stored.scalar_one() == 0


async def test_an_unknown_tracking_number_is_404_kept_for_ops_and_matched_on_redelivery(tracking):
    number = f"YT{uuid.uuid4().hex[:12].upper()}"
    payload = hook(number, "InfoReceived", [("2026-01-01T08:00:00Z", "InfoReceived")])
    response = await post_hook(tracking, payload)
    assert response.status_code == 404 and number in response.json()["detail"]
    unmatched = (await tracking.ops("GET", "/v1/tracking-events/unmatched", params={"limit": 250})).json()["items"]
    assert payload["event_id"] in {e["event_id"] for e in unmatched}
    assert (
        await tracking.client.get("/v1/tracking-events/unmatched", headers=tracking.auth("merchant"))
    ).status_code == 403
    # The shipment appears afterwards; the aggregator's retry of the same event now lands.
    job = await paid(tracking)
    await shipped(tracking, job, number=number)
    assert (await post_hook(tracking, payload)).json()["outcome"] == "recorded"
    unmatched = (await tracking.ops("GET", "/v1/tracking-events/unmatched", params={"limit": 250})).json()["items"]
    assert payload["event_id"] not in {e["event_id"] for e in unmatched}


async def test_a_malformed_but_signed_event_is_422_and_stores_nothing(tracking):
    payload = {
        "ts": 1,
        "event": "tracking_update",
        "event_id": "bad-1",
        "msg": {"tracking_number": "YT1234", "tag": "Teleported"},
    }
    response = await post_hook(tracking, payload)
    assert response.status_code == 422 and any("tag" in e["field"] for e in response.json()["errors"])
    async with tracking.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).where(carrier_events.c.event_id == "bad-1"))).scalar_one() == 0


async def test_no_scan_alerts_list_old_shipments_the_carrier_never_scanned(tracking):
    silent, scanned, fresh = await paid(tracking), await paid(tracking), await paid(tracking)
    for job in (silent, scanned, fresh):
        await shipped(tracking, job)
    ids = {j: (await shipment_of(tracking, j))["shipment_id"] for j in (silent, scanned, fresh)}
    number = (await tracking.ops("GET", f"/v1/shipments/{ids[scanned]}")).json()["tracking_number"]
    await post_hook(tracking, hook(number, "InTransit", [("2026-01-02T09:00:00Z", "InTransit")]))
    async with tracking.engine.begin() as conn:
        await conn.execute(
            update(shipments)
            .where(shipments.c.id.in_([ids[silent], ids[scanned]]))
            .values(shipped_at=func.now() - timedelta(days=tracking.settings.no_scan_days + 1))
        )
    alerts = (await tracking.client.get("/v1/alerts/no-scan", headers=tracking.auth("merchant"))).json()["items"]
    assert [a["id"] for a in alerts] == [ids[silent]]


# --- the public tracking page ----------------------------------------------------------------------------------


async def test_the_public_page_shows_the_parcel_and_no_personal_data(tracking):
    address = f"ana-{uuid.uuid4().hex[:6]}@example.com"
    job = await paid(tracking, email_address=address)
    number = (await shipped(tracking, job))["tracking_number"]
    scan = {"location": "Rua Augusta 1500, Sao Paulo", "country_iso3": "BRA"}
    await post_hook(tracking, hook(number, "Delivered", [("2026-01-05T14:00:00Z", "Delivered")], **scan))
    async with tracking.engine.begin() as conn:  # a carrier message naming the recipient must not leak either
        await conn.execute(
            update(checkpoints).values(message="Signed for by Ana Souza").where(checkpoints.c.status == "Delivered")
        )

    response = await tracking.client.get(f"/track/{number}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["carrier"], body["status"], body["destination_country"]) == ("YunExpress", "Delivered", "BR")
    assert [c["status"] for c in body["timeline"]] == ["Delivered"] and body["timeline"][0]["country"] == "BRA"
    for personal in ("Ana", "Souza", "Augusta", "1500", "Sao Paulo", "01304", "91234", address, "example.com", "#1001"):
        assert personal not in response.text, personal
    assert (await tracking.client.get("/track/YTNOSUCHNUMBER")).status_code == 404


async def test_the_public_page_is_rate_limited_per_client(tracking):
    statuses = [(await tracking.client.get("/track/YTANY0001")).status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    limited = await tracking.client.get("/track/YTANY0001")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
