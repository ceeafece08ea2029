"""The checkout service as a process over real HTTP, PostgreSQL and Kafka, with the Stripe emulator: shipping methods,
quotes and rules, checkout with shipping, balance and card payments, idempotency, webhooks, refunds."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from services.checkout import handlers
from services.checkout.adapters.payment_provider import StripeProvider
from services.checkout.adapters.tables import ledger_entries, payments, refunds, wallets
from shared import topics
from shared.events import (
    Address,
    OrderReadyForCheckout,
    PayableLine,
    PayableOrderPayload,
    RefundApproved,
    RefundApprovedPayload,
    parse_event,
)
from shared.money import Money
from tests.conftest import settings_for
from tests.kafka import read_topic
from tools import demo
from tools.emulators import stripe as stripe_emulator
from tools.stack import Stack, free_ports

WEBHOOK_SECRET = "whsec_test_checkout"
STRIPE_KEY = "sk_test_checkout"


@pytest.fixture(scope="module")
async def env(migrated, tmp_path_factory):
    service_port, stripe_port = free_ports(2)
    emulator = stripe_emulator.create_app(f"http://127.0.0.1:{service_port}/webhooks/stripe", WEBHOOK_SECRET)
    server = uvicorn.Server(uvicorn.Config(emulator, host="127.0.0.1", port=stripe_port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    service_env = {
        **migrated,
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    stack = Stack(service_env, ports={"checkout": service_port}, log_dir=tmp_path_factory.mktemp("checkout-logs"))
    stack.start_all(timeout=60)
    try:
        yield {"url": stack.url("checkout"), "stripe": f"http://127.0.0.1:{stripe_port}", "env": service_env}
    finally:
        stack.stop()
        server.should_exit = True
        await serving


@pytest.fixture
async def engine(engine_for):
    return engine_for("checkout")


class Api:
    def __init__(self, url: str, merchant: str):
        self.url, self.merchant = url, merchant
        self.http = httpx.AsyncClient(base_url=url, timeout=30)

    async def call(self, method: str, path: str, role: str = "merchant", **kw) -> httpx.Response:
        headers = {**demo.auth(role, self.merchant), **kw.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kw)


def payable(country: str = "DE", cost: str = "10.00", grams: int = 400, sku: str = "SKU-1", qty: int = 1):
    return PayableOrderPayload(
        store_id="store-1",
        order_name=f"#{uuid.uuid4().hex[:4]}",
        currency="USD",
        lines=[
            PayableLine(
                catalog_variant_id=f"var-{sku}",
                sku=sku,
                quantity=qty,
                unit_cost=Money.of(cost, "USD"),
                unit_weight_grams=grams,
            )
        ],
        packaging=[
            PayableLine(
                catalog_variant_id="box",
                sku="BOX",
                quantity=1,
                unit_cost=Money.of("0.50", "USD"),
                unit_weight_grams=100,
            )
        ],
        shipping_address=Address(country_code=country),
    )


async def ready(engine, merchant: str, order: PayableOrderPayload) -> str:
    order_id = f"o-{uuid.uuid4().hex[:10]}"
    async with engine.begin() as conn:
        await handlers.on_orders_ready(
            conn, [OrderReadyForCheckout(merchant_id=merchant, order_id=order_id, payload=order)]
        )
    return order_id


METHOD = {
    "name": "YunExpress Global Direct",
    "carrier": "YunExpress",
    "currency": "USD",
    "rates": {
        "DE": {"first_weight_grams": 500, "first_price": "3.10", "step_weight_grams": 100, "step_price": "0.35"},
        "FR": {"brackets": [{"max_weight_grams": 1000, "price": "6.00"}]},
    },
    "delivery_days_min": 7,
    "delivery_days_max": 12,
    "max_weight_grams": 2000,
}


async def new_method(api: Api, **changes) -> str:
    response = await api.call("POST", "/v1/shipping-methods", role="ops", json={**METHOD, **changes})
    assert response.status_code == 201, response.text
    return response.json()["id"]


_free_shipping: dict[str, str] = {}


async def free_shipping(api: Api) -> str:
    """A method that costs nothing, for tests about payments rather than shipping prices."""
    if api.url not in _free_shipping:
        rates = {c: {"first_weight_grams": 2000, "first_price": "0.00"} for c in ("DE", "FR", "US")}
        _free_shipping[api.url] = await new_method(api, name="Free test shipping", rates=rates)
    return _free_shipping[api.url]


async def checkout(api: Api, order_ids: list[str], **body) -> dict:
    """A checkout; without `shipping`, every order ships by the free method (no rule or default is set)."""
    if "shipping" not in body:
        body["shipping"] = {order_id: await free_shipping(api) for order_id in order_ids}
    response = await api.call("POST", "/v1/checkouts", json={"order_ids": order_ids, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def top_up(api: Api, amount: str) -> None:
    body = {"merchant_id": api.merchant, "amount": {"amount": amount, "currency": "USD"}, "reference": "wire"}
    assert (await api.call("POST", "/v1/balance/top-ups", role="ops", json=body)).status_code == 201


async def eventually(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)
    return result


async def test_methods_quotes_rules_and_checkout_with_shipping(env, engine):
    api = Api(env["url"], f"m-{uuid.uuid4().hex[:8]}")
    assert (await api.call("POST", "/v1/shipping-methods", json=METHOD)).status_code == 403
    bad = await api.call("POST", "/v1/shipping-methods", role="ops", json={**METHOD, "rates": {"DE": {}}})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    yun = await new_method(api)
    express = await new_method(
        api,
        name="DHL Express",
        carrier="DHL",
        rates={"DE": {"first_weight_grams": 2000, "first_price": "19.90"}},
        delivery_days_min=2,
        delivery_days_max=4,
    )
    fr_only = await new_method(
        api, name="Colissimo", carrier="La Poste", rates={"FR": {"first_weight_grams": 1, "first_price": "1"}}
    )

    unknown = await api.call(
        "POST", "/v1/shipping-rules", json={"name": "x", "priority": 1, "action": "method", "method_ids": ["nope"]}
    )
    assert unknown.status_code == 422 and "nope" in unknown.json()["detail"]
    heavy = {"name": "heavy goes express", "priority": 1, "action": "fastest", "method_ids": [yun, express]}
    heavy["conditions"] = {"weight_min_grams": 1000, "countries": ["DE"]}
    rule = await api.call("POST", "/v1/shipping-rules", json=heavy)
    assert rule.status_code == 201, rule.text
    fr_rule = {"name": "france", "priority": 2, "action": "method", "method_ids": [fr_only]}
    fr_rule["conditions"] = {"skus": ["FR-ONLY"]}
    assert (await api.call("POST", "/v1/shipping-rules", json=fr_rule)).status_code == 201
    assert (await api.call("PUT", "/v1/shipping-settings", json={"default_method_id": yun})).status_code == 200

    light = await ready(engine, api.merchant, payable(grams=500))  # 600 g with the box: 3.10 + 1 step of 0.35
    heavy_order = await ready(engine, api.merchant, payable(grams=1200))
    flagged = await ready(engine, api.merchant, payable(sku="FR-ONLY"))

    quote = (await api.call("GET", "/v1/shipping-quotes", params={"order_id": light, "explain": "true"})).json()
    assert quote["weight_grams"] == 600
    ours = {yun, express, fr_only}  # methods are shared by all merchants: other tests add theirs
    assert [(i["name"], i["price"]["amount"]) for i in quote["items"] if i["method_id"] in ours] == [
        ("YunExpress Global Direct", "3.45"),
        ("DHL Express", "19.90"),
    ]
    assert [u["reason"] for u in quote["unavailable"] if u["method_id"] in ours] == ["does not ship to DE"]
    assert quote["selected"]["method_id"] == yun and "default" in quote["selected"]["reason"]
    assert (await api.call("GET", "/v1/shipping-quotes", params={"order_id": light})).json()["unavailable"] is None
    heavy_quote = (await api.call("GET", "/v1/shipping-quotes", params={"order_id": heavy_order})).json()
    assert heavy_quote["selected"]["method_id"] == express and "heavy goes express" in heavy_quote["selected"]["reason"]
    flagged_quote = (await api.call("GET", "/v1/shipping-quotes", params={"order_id": flagged})).json()
    assert "Colissimo cannot ship this order: does not ship to DE" == flagged_quote["selected"]["problem"]

    # A flagged order cannot be checked out until the merchant picks a method for it.
    refused = await api.call("POST", "/v1/checkouts", json={"order_ids": [light, flagged]})
    assert refused.status_code == 409 and "flagged" in refused.json()["detail"]
    wrong = await api.call("POST", "/v1/checkouts", json={"order_ids": [flagged], "shipping": {flagged: fr_only}})
    assert wrong.status_code == 422 and "does not ship to DE" in wrong.json()["detail"]
    done = await checkout(api, [light, heavy_order, flagged], shipping={flagged: yun})
    by_order = {o["order_id"]: o for o in done["orders"]}
    assert by_order[light]["costs"]["shipping"]["amount"] == "3.45"
    assert by_order[light]["costs"]["total"]["amount"] == "13.95"  # 10.00 + 0.50 + 3.45
    assert by_order[heavy_order]["shipping"]["rule_id"] == rule.json()["id"]
    assert by_order[flagged]["shipping"]["rule_reason"] == "chosen by the merchant at checkout"

    # Preview draft rules without saving; re-run the saved ones.
    draft = {"name": "all cheap", "priority": 0, "action": "cheapest", "method_ids": [express, yun]}
    preview = await api.call("POST", "/v1/shipping-rules/preview", json={"order_ids": [heavy_order], "rules": [draft]})
    item = preview.json()["items"][0]
    assert (item["method_id"], item["price"]["amount"]) == (yun, "5.90")  # 1300 g: 3.10 + 8 x 0.35
    assert "all cheap" in item["reason"]
    saved = (await api.call("GET", "/v1/shipping-quotes", params={"order_id": heavy_order})).json()["selected"]
    assert saved["method_id"] == express  # the preview saved nothing
    rules = (await api.call("GET", "/v1/shipping-rules")).json()["items"]
    await api.call("PUT", f"/v1/shipping-rules/{rules[0]['id']}", json={**heavy, "enabled": False})
    rerun = (await api.call("POST", "/v1/shipping-rules/rerun")).json()
    assert rerun == {"orders": 3, "flagged": 1}
    saved = (await api.call("GET", "/v1/shipping-quotes", params={"order_id": heavy_order})).json()["selected"]
    assert saved["method_id"] == yun and saved["rule_id"] is None
    stranger = Api(env["url"], f"m-{uuid.uuid4().hex[:8]}")
    assert (await stranger.call("GET", f"/v1/shipping-rules/{rules[0]['id']}")).status_code == 404
    assert (await stranger.call("GET", "/v1/shipping-quotes", params={"order_id": light})).status_code == 404


async def test_fifty_concurrent_payments_of_one_checkout_charge_once(env, engine):
    api = Api(env["url"], f"m-{uuid.uuid4().hex[:8]}")
    await top_up(api, "100.00")
    order = await ready(engine, api.merchant, payable(cost="20.00"))
    paid = await checkout(api, [order])
    path = f"/v1/checkouts/{paid['id']}/pay"
    answers = await asyncio.gather(
        *(api.call("POST", path, json={"method": "balance"}, headers={"Idempotency-Key": f"k{n}"}) for n in range(50))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1 and set(statuses) == {200, 409}, statuses
    conflict = next(a for a in answers if a.status_code == 409).json()
    assert "is paid" in conflict["detail"]
    async with engine.connect() as conn:
        charges = (
            await conn.execute(
                select(func.count()).where(
                    ledger_entries.c.merchant_id == api.merchant, ledger_entries.c.kind == "charge"
                )
            )
        ).scalar_one()
        count = (await conn.execute(select(func.count()).where(payments.c.checkout_id == paid["id"]))).scalar_one()
    assert (charges, count) == (2, 1)  # one transaction of two postings
    balance = (await api.call("GET", "/v1/balance")).json()
    assert balance["balance"]["amount"] == "79.50"  # 100 - (20.00 + 0.50)

    # The same key fifty times at once: one payment, fifty identical answers.
    second = await checkout(api, [await ready(engine, api.merchant, payable(cost="1.00"))])
    same = await asyncio.gather(
        *(
            api.call(
                "POST",
                f"/v1/checkouts/{second['id']}/pay",
                json={"method": "balance"},
                headers={"Idempotency-Key": "one"},
            )
            for _ in range(50)
        )
    )
    assert {a.status_code for a in same} == {200} and len({a.text for a in same}) == 1
    assert (await api.call("GET", "/v1/balance")).json()["balance"]["amount"] == "78.00"


async def test_bad_payment_requests_change_nothing(env, engine):
    api = Api(env["url"], f"m-{uuid.uuid4().hex[:8]}")
    order = await ready(engine, api.merchant, payable(cost="30.00"))
    paid = await checkout(api, [order])
    path = f"/v1/checkouts/{paid['id']}/pay"

    short = await api.call("POST", path, json={"method": "balance"}, headers={"Idempotency-Key": "a"})
    assert short.status_code == 402 and short.json()["shortfall"] == {"amount": "30.50", "currency": "USD"}
    for body, status in (
        ({"method": "paypal"}, 422),
        ({"method": "balance", "amount": {"amount": "0", "currency": "USD"}}, 422),
        ({"method": "balance", "amount": {"amount": "-5.00", "currency": "USD"}}, 422),
        ({"method": "balance", "amount": {"amount": "30.50", "currency": "EUR"}}, 422),
        ({"method": "balance", "amount": {"amount": "30.49", "currency": "USD"}}, 422),
        ({"method": "card"}, 422),
    ):
        response = await api.call("POST", path, json=body)
        assert response.status_code == status, (body, response.text)
    assert (
        "currency mismatch"
        in (
            await api.call("POST", path, json={"method": "balance", "amount": {"amount": "30.50", "currency": "EUR"}})
        ).json()["detail"]
    )

    # A credit line covers it; the same key then replays; another body with it is refused.
    credit = await api.call(
        "PUT",
        f"/v1/balance/credit-lines/{api.merchant}",
        role="ops",
        json={"limit": {"amount": "40", "currency": "USD"}},
    )
    assert credit.json()["available"]["amount"] == "40.00"
    body = {"method": "balance", "amount": {"amount": "30.50", "currency": "USD"}}
    first = await api.call("POST", path, json=body, headers={"Idempotency-Key": "a"})
    assert first.status_code == 200, first.text
    again = await api.call("POST", path, json=body, headers={"Idempotency-Key": "a"})
    assert again.text == first.text and again.headers["idempotent-replayed"] == "true"
    other = await api.call("POST", path, json={"method": "balance"}, headers={"Idempotency-Key": "a"})
    assert other.status_code == 422
    assert (await api.call("GET", "/v1/balance")).json()["balance"]["amount"] == "-30.50"
    lower = await api.call(
        "PUT",
        f"/v1/balance/credit-lines/{api.merchant}",
        role="ops",
        json={"limit": {"amount": "10", "currency": "USD"}},
    )
    assert lower.status_code == 409
    again_paid = await api.call("POST", "/v1/checkouts", json={"order_ids": [order]})
    assert again_paid.status_code == 409 and "it is paid" in again_paid.json()["detail"]


async def test_card_failure_then_retry_confirmed_once_by_webhook(env, engine):
    api = Api(env["url"], f"m-{uuid.uuid4().hex[:8]}")
    stripe = httpx.AsyncClient(base_url=env["stripe"])
    await stripe.post("/_emulator/config", json={"duplicates": 2})
    order = await ready(engine, api.merchant, payable(cost="12.00"))
    paid = await checkout(api, [order])
    path = f"/v1/checkouts/{paid['id']}/pay"
    before = (await stripe.get("/_emulator/stats")).json()["charges"]

    declined = await api.call(
        "POST",
        path,
        json={"method": "card", "payment_method": "pm_card_chargeDeclined"},
        headers={"Idempotency-Key": "c1"},
    )
    assert declined.status_code == 200 and declined.json()["status"] == "failed"
    assert declined.json()["failure_reason"] == "Your card was declined."
    view = (await api.call("GET", f"/v1/checkouts/{paid['id']}")).json()
    assert view["status"] == "open" and view["last_payment"]["status"] == "failed"

    retry = await api.call(
        "POST", path, json={"method": "card", "payment_method": "pm_card_visa"}, headers={"Idempotency-Key": "c2"}
    )
    assert retry.json()["status"] == "processing", retry.text
    busy = await api.call("POST", path, json={"method": "balance"})
    assert busy.status_code == 409 and "being paid by card" in busy.json()["detail"]

    async def paid_now():
        return (await api.call("GET", f"/v1/checkouts/{paid['id']}")).json()["status"] == "paid"

    await eventually(paid_now)
    await asyncio.sleep(0.5)  # the duplicated deliveries arrive
    assert (await stripe.get("/_emulator/stats")).json()["charges"] - before == 2
    records = await read_topic(
        env["env"]["KAFKA_BOOTSTRAP_SERVERS"], env["env"]["TOPIC_PREFIX"] + topics.PAYMENTS, until=10_000, timeout=3
    )
    kinds = [e.event_type for e in map(parse_event, (r.value for r in records)) if e.order_id == order]
    assert kinds == ["PaymentStarted", "PaymentFailed", "PaymentStarted", "OrderPaid"]
    await stripe.post("/_emulator/config", json={"duplicates": 0})


async def test_webhooks_with_bad_signatures_or_old_timestamps_change_nothing(env, engine):
    api = Api(env["url"], f"m-{uuid.uuid4().hex[:8]}")
    stripe = httpx.AsyncClient(base_url=env["stripe"])
    await stripe.post("/_emulator/config", json={"webhook_delay_s": 30})
    try:
        order = await ready(engine, api.merchant, payable())
        paid = await checkout(api, [order])
        pay = await api.call(
            "POST", f"/v1/checkouts/{paid['id']}/pay", json={"method": "card", "payment_method": "pm_card_visa"}
        )
        async with engine.connect() as conn:
            ref = (
                await conn.execute(select(payments.c.provider_ref).where(payments.c.id == pay.json()["payment_id"]))
            ).scalar_one()
        intent = (await stripe.get(f"/v1/payment_intents/{ref}")).json() | {"status": "succeeded"}
        body = json.dumps({"id": "evt_forged", "type": "payment_intent.succeeded", "data": {"object": intent}}).encode()
        url = f"{env['url']}/webhooks/stripe"
        for signature in (
            stripe_emulator.sign("whsec_wrong", body),
            stripe_emulator.sign(WEBHOOK_SECRET, body, int(time.time()) - 301),
            "t=abc,v1=00",
            None,
        ):
            headers = {"Stripe-Signature": signature} if signature else {}
            response = await api.http.post(url, content=body, headers=headers)
            assert response.status_code == 400, response.text
        assert (await api.call("GET", f"/v1/checkouts/{paid['id']}")).json()["status"] == "paying"
        two = stripe_emulator.sign("whsec_old", body) + "," + stripe_emulator.sign(WEBHOOK_SECRET, body).split(",")[1]
        ok = await api.http.post(url, content=body, headers={"Stripe-Signature": two})
        assert ok.json() == {"outcome": "paid"}
        assert (await api.http.post(url, content=body, headers={"Stripe-Signature": two})).json() == {
            "outcome": "duplicate"
        }
    finally:
        await stripe.post("/_emulator/config", json={"webhook_delay_s": 0.05})


async def test_refunds_go_back_the_way_the_order_was_paid_once(env, engine):
    api = Api(env["url"], f"m-{uuid.uuid4().hex[:8]}")
    await top_up(api, "50.00")
    by_balance = await ready(engine, api.merchant, payable(cost="9.50"))
    first = await checkout(api, [by_balance])
    assert (await api.call("POST", f"/v1/checkouts/{first['id']}/pay", json={"method": "balance"})).status_code == 200
    by_card = await ready(engine, api.merchant, payable(cost="19.50"))
    second = await checkout(api, [by_card])
    await api.call(
        "POST", f"/v1/checkouts/{second['id']}/pay", json={"method": "card", "payment_method": "pm_card_visa"}
    )

    async def card_paid():
        return (await api.call("GET", f"/v1/checkouts/{second['id']}")).json()["status"] == "paid"

    await eventually(card_paid)
    settings = settings_for("checkout", env["env"])
    provider = StripeProvider(settings)

    async def refund(order_id: str, refund_id: str, amount: str, currency: str = "USD") -> None:
        event = RefundApproved(
            merchant_id=api.merchant,
            order_id=order_id,
            payload=RefundApprovedPayload(refund_id=refund_id, amount=Money.of(amount, currency), reason="damaged"),
        )
        async with engine.begin() as conn:
            await handlers.on_refund_approved(conn, event, provider)

    for _ in range(2):  # a redelivered approval pays once
        await refund(by_balance, "rf-1", "4.00")
        await refund(by_card, "rf-2", "20.00")
    await refund(by_card, "rf-3", "0.01")  # only 0.00 left
    await refund(by_balance, "rf-4", "1.00", "EUR")
    async with engine.connect() as conn:
        rows = {
            r.id: r for r in (await conn.execute(select(refunds).where(refunds.c.merchant_id == api.merchant))).all()
        }
        balance = (
            await conn.execute(select(wallets.c.balance).where(wallets.c.merchant_id == api.merchant))
        ).scalar_one()
    assert {k: (r.status, r.method) for k, r in rows.items()} == {
        "rf-1": ("completed", "balance"),
        "rf-2": ("completed", "card"),
        "rf-3": ("failed", "card"),
        "rf-4": ("failed", "balance"),
    }
    assert rows["rf-2"].provider_ref.startswith("re_") and "currency mismatch" in rows["rf-4"].failure_reason
    assert balance == 50 - 10 + 4
    stats = (await httpx.AsyncClient(base_url=env["stripe"]).get("/_emulator/stats")).json()
    assert stats["refunds"] >= 1


async def test_a_card_payment_whose_webhook_never_comes_is_settled_by_asking_the_provider(env, engine):
    api = Api(env["url"], f"m-{uuid.uuid4().hex[:8]}")
    stripe = httpx.AsyncClient(base_url=env["stripe"])
    await stripe.post("/_emulator/config", json={"lose_webhooks": True})
    try:
        order = await ready(engine, api.merchant, payable(cost="9.00"))
        started = await checkout(api, [order])
        pay = {"method": "card", "payment_method": "pm_card_visa"}
        path = f"/v1/checkouts/{started['id']}/pay"
        assert (await api.call("POST", path, json=pay)).json()["status"] == "processing"

        provider = StripeProvider(settings_for("checkout", env["env"]))
        async with engine.connect() as conn:
            stale = await handlers.card_payments_to_reconcile(conn, older_than_seconds=0)
        mine = [p for p in stale if p.checkout_id == started["id"]]
        assert len(mine) == 1

        async def settled_at_stripe():
            intent = await stripe.get(
                f"/v1/payment_intents/{mine[0].provider_ref}", headers={"Authorization": "Bearer sk_x"}
            )
            return intent.json()["status"] == "succeeded"

        await eventually(settled_at_stripe)
        for attempt in range(2):  # a second round, like a webhook arriving after all, changes nothing
            async with engine.begin() as conn:
                outcome = await handlers.reconcile_card_payment(conn, mine[0].provider_ref, started["id"], provider)
            assert outcome == ("paid" if attempt == 0 else "duplicate")
        assert (await api.call("GET", f"/v1/checkouts/{started['id']}")).json()["status"] == "paid"
    finally:
        await stripe.post("/_emulator/config", json={"lose_webhooks": False})
