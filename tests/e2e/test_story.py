"""The seed's story end to end, on the real stack (four service processes, PostgreSQL, Kafka, store emulators,
the Stripe emulator, an SMTP server), asserted through the public HTTP APIs and the emulators' state:

connect a Shopify and a WooCommerce store -> orders arrive by webhook and by Sync Orders -> one lands in Quoting,
is quoted and connected, moves to To Order -> packaging attached -> bulk checkout with shipping rules and the
balance -> a declined card leaves an order in Pending, paid again by card -> warehouse steps -> Shipped: the
fulfillment with tracking is in the store, the email in the SMTP server -> a refund and a reshipment run their
course -> a store-side cancellation before payment ends in Cancelled."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics
from tests.e2e.story_stack import Story, eventually, story  # noqa: F401 - `story` is the fixture
from tools.stack import SERVICES

pytestmark = pytest.mark.e2e

USD = "USD"


def usd(amount: str) -> dict:
    return {"amount": amount, "currency": USD}


async def connect_stores(s: Story) -> tuple[str, str]:
    shopify = await s.ok(
        "POST",
        "sync",
        "/v1/stores",
        201,
        json={
            "platform": "shopify",
            "shop_domain": s.shop.shop,
            "name": "Loja Aurora",
            "access_token": s.shop.access_token,
            "webhook_secret": s.shop.webhook_secret,
            "api_url": s.shop_url,
        },
    )
    woo = await s.ok(
        "POST",
        "sync",
        "/v1/stores",
        201,
        json={
            "platform": "woocommerce",
            "shop_domain": s.woo.site,
            "name": "Woo Outfitters",
            "consumer_key": s.woo.consumer_key,
            "consumer_secret": s.woo.consumer_secret,
            "webhook_secret": s.woo.webhook_secret,
            "api_url": s.woo_url,
        },
    )
    # Our webhooks are registered in each store, at the address SYNC_PUBLIC_URL gives.
    registered = await s.ok("POST", "sync", f"/v1/stores/{shopify['id']}/webhooks")
    assert registered["address"] == f"{s.stack.url('sync')}/webhooks/shopify"
    assert {w["topic"] for w in s.shop.webhooks} >= {"orders/create", "orders/paid", "orders/cancelled"}
    await s.ok("POST", "sync", f"/v1/stores/{woo['id']}/webhooks")
    assert {(w["topic"], w["delivery_url"]) for w in s.woo.webhooks} == {
        (t, f"{s.stack.url('sync')}/webhooks/woocommerce/{woo['id']}")
        for t in ("order.created", "order.updated", "order.deleted")
    }
    return shopify["id"], woo["id"]


async def test_the_story(story: Story):  # noqa: F811 - the fixture
    s, tag = story, uuid.uuid4().hex[:6]
    shop, woo = s.shop, s.woo
    shop_store, woo_store = await connect_stores(s)

    # --- ops set up the catalog and shipping; the merchant connects products, packaging and rules -------------
    variants = {}
    for name, cost, grams in (("MUG", "4.00", 300), ("TEE", "6.00", 200), ("LAMP", "8.00", 500), ("BOX", "0.50", 50)):
        body = {
            "sku": f"{name}-{tag}",
            "title": name.title(),
            "unit_cost": cost,
            "currency": USD,
            "weight_grams": grams,
        }
        variants[name] = (await s.ok("POST", "orders", "/v1/catalog/variants", 201, role="ops", json=body))["id"]
    for store_id, product, variant, catalog in ((shop_store, "7001", "8001", "MUG"), (woo_store, "9001", "", "TEE")):
        await s.ok(
            "POST",
            "orders",
            "/v1/product-connections",
            201,
            json={
                "store_id": store_id,
                "external_product_id": product,
                "external_variant_id": variant,
                "catalog_variant_id": variants[catalog],
            },
        )
    box = await s.ok(
        "POST",
        "orders",
        "/v1/private-products",
        201,
        json={"kind": "packaging", "name": "Aurora gift box", "catalog_variant_id": variants["BOX"]},
    )
    await s.ok(
        "POST",
        "orders",
        "/v1/packaging-rules",
        201,
        json={"store_id": shop_store, "private_product_id": box["id"], "quantity": 1},
    )

    def method(name: str, carrier: str, us: str, br: str, days: tuple[int, int]) -> dict:
        flat = {"first_weight_grams": 2000}
        return {
            "name": f"{name} {tag}",
            "carrier": carrier,
            "currency": USD,
            "rates": {"US": {**flat, "first_price": us}, "BR": {**flat, "first_price": br}},
            "delivery_days_min": days[0],
            "delivery_days_max": days[1],
            "max_weight_grams": 2000,
        }

    standard = await s.ok(
        "POST",
        "checkout",
        "/v1/shipping-methods",
        201,
        role="ops",
        json=method("Standard", "YunExpress", "5.00", "9.00", (10, 20)),
    )
    express = await s.ok(
        "POST",
        "checkout",
        "/v1/shipping-methods",
        201,
        role="ops",
        json=method("Express", "DHL Express", "15.00", "12.00", (3, 6)),
    )
    await s.ok("PUT", "checkout", "/v1/shipping-settings", json={"default_method_id": standard["id"]})
    brazil_rule = await s.ok(
        "POST",
        "checkout",
        "/v1/shipping-rules",
        201,
        json={
            "name": "Brazil goes express",
            "priority": 10,
            "conditions": {"countries": ["BR"]},
            "action": "method",
            "method_ids": [express["id"]],
        },
    )

    # --- orders arrive: by webhook, and by Sync Orders for the one whose webhooks were dropped -----------------
    s1 = shop.create_order(lines=[(7001, 8001, "S-MUG", 1, "19.90")], email=f"ana-{tag}@example.com")
    s2 = shop.create_order(
        lines=[(7001, 8001, "S-MUG", 1, "19.90")], country_code="BR", email=f"joao-{tag}@example.com.br"
    )
    shop.orders[s2["id"]]["customer_locale"] = "pt-BR"  # as the store holds it; its webhooks get lost below
    s3 = shop.create_order(lines=[(7002, 8002, "S-LAMP", 1, "39.00")], email=f"bia-{tag}@example.com")
    w1 = woo.create_order(lines=[(9001, 0, "W-TEE", 1, "25.00")], email=f"caio-{tag}@example.com")
    w2 = woo.create_order(lines=[(9001, 0, "W-TEE", 2, "25.00")])
    woo.outgoing.pop()  # w2's order.created never arrives
    # orders/create + orders/paid per order: positions 2 and 3 are the second order's, never delivered
    assert await shop.deliver(drop={2, 3}) == [200] * 4
    assert await woo.deliver() == [200]

    order_ids: dict[str, str] = {}
    for name, store_id, external in (
        ("s1", shop_store, s1["id"]),
        ("s3", shop_store, s3["id"]),
        ("w1", woo_store, w1["id"]),
    ):
        listed = await eventually(
            lambda store_id=store_id, external=external: _find(s, store_id, external), f"order {name} to arrive"
        )
        order_ids[name] = listed["id"]
    # the dropped ones are missing until the merchant clicks Sync Orders
    assert await _find(s, shop_store, s2["id"]) is None and await _find(s, woo_store, w2["id"]) is None
    assert await _sync_orders(s, shop_store) == {"new": 1, "updated": 0, "unchanged": 2, "skipped": 0}
    assert await _sync_orders(s, woo_store) == {"new": 1, "updated": 0, "unchanged": 1, "skipped": 0}
    for name, store_id, external in (("s2", shop_store, s2["id"]), ("w2", woo_store, w2["id"])):
        found = await eventually(
            lambda store_id=store_id, external=external: _find(s, store_id, external), f"Sync Orders to bring {name}"
        )
        order_ids[name] = found["id"]

    # --- Quoting: the unconnected product; the merchant asks a quote, ops answer it, the order moves on ---------
    quoting = await s.in_status(order_ids["s3"], "quoting")
    assert "S-LAMP" in quoting["status_reason"]
    quote = await s.ok(
        "POST",
        "orders",
        "/v1/quotes",
        201,
        json={"store_id": shop_store, "external_product_id": "7002", "external_variant_id": "8002", "title": "Lamp"},
    )
    await s.ok("POST", "orders", f"/v1/quotes/{quote['id']}/claim", role="ops")
    answered = await s.ok(
        "POST", "orders", f"/v1/quotes/{quote['id']}/answer", role="ops", json={"catalog_variant_id": variants["LAMP"]}
    )
    assert answered["status"] == "finished" and answered["connection_id"]
    s3_order = await s.in_status(order_ids["s3"], "to_order")
    assert s3_order["connection_state"] == "all" and s3_order["lines"][0]["catalog_variant_id"] == variants["LAMP"]

    # --- packaging: the Shopify store's rule put the gift box into its orders, not into the Woo order -----------
    details = {name: await s.in_status(order_ids[name], "to_order") for name in ("s1", "s2", "w1")} | {"s3": s3_order}
    for name in ("s1", "s2", "s3"):
        assert [(p["name"], p["quantity"], p["sku"]) for p in details[name]["packaging"]] == [
            ("Aurora gift box", 1, f"BOX-{tag}")
        ], name
        assert details[name]["costs"]["packaging"] == usd("0.50")
    assert details["w1"]["packaging"] == [] and details["w1"]["costs"]["packaging"] is None
    assert details["s2"]["customer_locale"] == "pt-BR"

    # --- bulk checkout with the shipping rules, paid from the balance ------------------------------------------
    await s.ok(
        "POST",
        "checkout",
        "/v1/balance/top-ups",
        201,
        role="ops",
        json={"merchant_id": s.merchant, "amount": usd("100.00"), "reference": f"wire {tag}"},
    )
    bulk_ids = [order_ids[n] for n in ("s1", "s3", "w1")]
    checkout = await eventually(lambda: _checkout(s, bulk_ids), "checkout to know the three orders")
    totals = {o["order_id"]: o["costs"]["total"]["amount"] for o in checkout["orders"]}
    # products + packaging 0.50 (Shopify only) + Standard to the US 5.00 (the default: no rule matched)
    assert totals == {order_ids["s1"]: "9.50", order_ids["s3"]: "13.50", order_ids["w1"]: "11.00"}
    assert checkout["total"] == usd("34.00")
    assert {(o["shipping"]["method_id"], o["shipping"]["rule_id"]) for o in checkout["orders"]} == {
        (standard["id"], None)
    }
    paid = await s.ok(
        "POST",
        "checkout",
        f"/v1/checkouts/{checkout['id']}/pay",
        headers={"Idempotency-Key": f"bulk-{tag}"},
        json={"method": "balance", "amount": usd("34.00")},
    )
    assert paid["status"] == "succeeded"
    assert (await s.ok("GET", "checkout", "/v1/balance"))["balance"] == usd("66.00")
    for name in ("s1", "s3", "w1"):
        detail = await s.in_status(order_ids[name], "processing")
        assert detail["paid_amount"] == usd(totals[order_ids[name]])
        assert detail["shipping"]["method_id"] == standard["id"] and detail["shipping"]["rule_id"] is None

    # --- the Brazilian order by card: declined, Pending with the reason, then paid ------------------------------
    card_checkout = await eventually(lambda: _checkout(s, [order_ids["s2"]]), "checkout to know s2")
    [s2_line] = card_checkout["orders"]
    assert s2_line["shipping"]["rule_id"] == brazil_rule["id"] and s2_line["shipping"]["method_id"] == express["id"]
    assert s2_line["costs"]["total"] == usd("16.50")  # 4.00 + 0.50 box + Express to Brazil 12.00
    pay_url = f"/v1/checkouts/{card_checkout['id']}/pay"
    declined = await s.ok(
        "POST",
        "checkout",
        pay_url,
        headers={"Idempotency-Key": f"card-1-{tag}"},
        json={"method": "card", "payment_method": "pm_card_chargeDeclined"},
    )
    assert declined["status"] == "failed" and "declined" in declined["failure_reason"]
    pending = await eventually(
        lambda: _reason(s, order_ids["s2"], "pending", "declined"), "s2 in Pending with the decline reason"
    )
    assert pending["status_reason"].startswith("payment failed")
    retried = await s.ok(
        "POST",
        "checkout",
        pay_url,
        headers={"Idempotency-Key": f"card-2-{tag}"},
        json={"method": "card", "payment_method": "pm_card_visa"},
    )
    assert retried["status"] == "processing"  # the provider's signed webhook confirms it
    s2_paid = await s.in_status(order_ids["s2"], "processing")
    assert s2_paid["paid_amount"] == usd("16.50")
    assert (s2_paid["shipping"]["rule_id"], s2_paid["shipping"]["method_id"]) == (brazil_rule["id"], express["id"])
    assert (await s.ok("GET", "checkout", f"/v1/checkouts/{card_checkout['id']}"))["status"] == "paid"
    assert [
        i["status"] for i in s.stripe.intents.values() if i["metadata"].get("checkout_id") == card_checkout["id"]
    ] == [
        "requires_payment_method",
        "succeeded",
    ]

    # --- the warehouse: purchase, quality check, pack, label, ship ---------------------------------------------
    jobs = await eventually(
        lambda: _jobs_by_order(s, [order_ids[n] for n in ("s1", "s2", "s3", "w1")]),
        "a fulfillment job for each of the four paid orders",
    )
    assert [(p["sku"], p["quantity"]) for p in jobs[order_ids["s1"]]["packaging"]] == [(f"BOX-{tag}", 1)]
    carriers = {"s1": "YunExpress", "s2": "DHL Express", "s3": "YunExpress", "w1": "YunExpress"}
    numbers = {name: f"TRK{tag}{n}".upper() for n, name in enumerate(carriers)}
    for name, carrier in carriers.items():
        await _warehouse(s, jobs[order_ids[name]]["id"], carrier, numbers[name])
    shipped = {name: await s.in_status(order_ids[name], "shipped") for name in carriers}
    for name, detail in shipped.items():
        assert (detail["shipment"]["carrier"], detail["shipment"]["tracking_number"]) == (carriers[name], numbers[name])

    # Shipped: the tracking is in each store ...
    for name, order in (("s1", s1), ("s2", s2), ("s3", s3)):
        fulfillment = await eventually(
            lambda order=order: _shopify_fulfillment(s, order["id"]), f"the Shopify fulfillment of {name}"
        )
        assert (fulfillment["tracking_number"], fulfillment["tracking_company"]) == (numbers[name], carriers[name])
        assert shop.orders[order["id"]]["fulfillment_status"] == "fulfilled"
    tracking = await eventually(lambda: _woo_trackings(s, w1["id"]), "the Woo shipment tracking")
    assert [(t["tracking_number"], t["custom_tracking_provider"]) for t in tracking] == [(numbers["w1"], "YunExpress")]
    # ... and each customer has the email, the Brazilian one in Portuguese.
    recipients = {"s1": s1["email"], "s2": s2["email"], "s3": s3["email"], "w1": w1["billing"]["email"]}
    for name, recipient in recipients.items():
        [mail] = await eventually(lambda recipient=recipient: _mails(s, recipient), f"the shipping email of {name}")
        assert numbers[name] in mail.get_body(("plain",)).get_content(), name
        assert shipped[name]["shipment"]["tracking_url"] in mail.get_body(("plain",)).get_content(), name
    [brazilian] = s.inbox.to(s2["email"])
    assert brazilian["Subject"] == f"Seu pedido {s2['name']} da Loja Aurora está a caminho"
    assert "Código de rastreamento" in brazilian.get_body(("plain",)).get_content()
    assert "dhl.com" in shipped["s2"]["shipment"]["tracking_url"]
    assert s.inbox.to(s1["email"])[0]["Subject"] == f"Your order {s1['name']} from Loja Aurora is on its way"

    # --- a refund: requested, approved, paid back to the balance -----------------------------------------------
    refund = await s.ok(
        "POST",
        "orders",
        f"/v1/orders/{order_ids['s1']}/refunds",
        201,
        headers={"Idempotency-Key": f"refund-{tag}"},
        json={"reason": "mug arrived chipped", "amount": usd("5.00")},
    )
    assert refund["state"] == "requested"
    assert (await s.order(order_ids["s1"]))["status"] == "refunds"
    await s.ok("POST", "orders", f"/v1/orders/{order_ids['s1']}/refunds/{refund['id']}/approve", role="ops")
    refunded = await eventually(lambda: _case(s, order_ids["s1"], refund["id"], "refunded"), "the refund to complete")
    assert refunded["status"] == "shipped" and refunded["refunded_amount"] == usd("5.00")
    assert (await s.ok("GET", "checkout", "/v1/balance"))["balance"] == usd("71.00")
    entries = (await s.ok("GET", "checkout", "/v1/balance/entries"))["items"]
    assert [(e["kind"], e["amount"], e["reference"]) for e in entries] == [
        ("refund", usd("5.00"), f"refund:{refund['id']}"),
        ("charge", usd("-34.00"), f"payment:{paid['payment_id']}"),
        ("top_up", usd("100.00"), f"wire {tag}"),
    ]

    # A card-paid order is refunded to the card, through the provider.
    card_refund = await s.ok(
        "POST",
        "orders",
        f"/v1/orders/{order_ids['s2']}/refunds",
        201,
        json={"reason": "never arrived", "amount": usd("16.50")},
    )
    await s.ok("POST", "orders", f"/v1/orders/{order_ids['s2']}/refunds/{card_refund['id']}/approve", role="ops")
    await eventually(lambda: _case(s, order_ids["s2"], card_refund["id"], "refunded"), "the card refund")
    intent = next(i for i in s.stripe.intents.values() if i["status"] == "succeeded")
    assert [(r["payment_intent"], r["amount"]) for r in s.stripe.refunds.values()] == [(intent["id"], 1650)]
    assert (await s.ok("GET", "checkout", "/v1/balance"))["balance"] == usd("71.00")

    # --- a reshipment: requested, approved, a new fulfillment shipped with a new tracking number ---------------
    line_id = shipped["s3"]["lines"][0]["external_line_id"]
    reshipment = await s.ok(
        "POST",
        "orders",
        f"/v1/orders/{order_ids['s3']}/reshipments",
        201,
        json={"reason": "lamp broken in transit", "external_line_ids": [line_id]},
    )
    assert (await s.order(order_ids["s3"]))["status"] == "resent"
    await s.ok("POST", "orders", f"/v1/orders/{order_ids['s3']}/reshipments/{reshipment['id']}/approve", role="ops")
    again = await eventually(
        lambda: _reshipment_job(s, reshipment["id"]), "tracking to open the reshipment's fulfillment"
    )
    assert again["order_id"] == order_ids["s3"] and again["reship_of"] == jobs[order_ids["s3"]]["id"]
    new_number = f"TRK{tag}R".upper()
    await _warehouse(s, again["id"], "YunExpress", new_number)
    resent = await eventually(
        lambda: _case(s, order_ids["s3"], reshipment["id"], "reshipped"), "the reshipment to ship"
    )
    assert resent["status"] == "shipped"
    [case] = [c for c in resent["after_sales"] if c["id"] == reshipment["id"]]
    assert case["shipment"]["tracking_number"] == new_number
    # the store's fulfillment carries the new tracking, and the customer has a second email with it
    updated = await eventually(
        lambda: _shopify_fulfillment(s, s3["id"], number=new_number), "the store's tracking to be updated"
    )
    assert updated["updates"] == 1 and len([f for f in shop.fulfillments.values() if f["order_id"] == s3["id"]]) == 1
    mails = await eventually(lambda: _mails(s, s3["email"], 2), "the reshipment's email")
    assert new_number in mails[1].get_body(("plain",)).get_content()

    # The same for the WooCommerce order: the store gets a second shipment tracking.
    woo_line = shipped["w1"]["lines"][0]["external_line_id"]
    woo_reshipment = await s.ok(
        "POST",
        "orders",
        f"/v1/orders/{order_ids['w1']}/reshipments",
        201,
        json={"reason": "wrong size sent", "external_line_ids": [woo_line]},
    )
    await s.ok("POST", "orders", f"/v1/orders/{order_ids['w1']}/reshipments/{woo_reshipment['id']}/approve", role="ops")
    woo_again = await eventually(lambda: _reshipment_job(s, woo_reshipment["id"]), "the Woo reshipment's fulfillment")
    await _warehouse(s, woo_again["id"], "YunExpress", f"TRK{tag}W".upper())
    await eventually(lambda: _case(s, order_ids["w1"], woo_reshipment["id"], "reshipped"), "the Woo reshipment")
    trackings = await eventually(lambda: _woo_trackings(s, w1["id"], 2), "the Woo store's second tracking")
    assert [t["tracking_number"] for t in trackings] == [numbers["w1"], f"TRK{tag}W".upper()]
    assert len(await eventually(lambda: _mails(s, recipients["w1"], 2), "the Woo reshipment's email")) == 2

    # --- the merchant syncs again: nothing new, nothing doubled; a cancellation after shipping is not lost ------
    # our own write-back fulfilled the three orders in the store: they are no longer wanted as new orders
    assert await _sync_orders(s, shop_store) == {"new": 0, "updated": 0, "unchanged": 0, "skipped": 3}
    shop.cancel_order(s1["id"], reason="customer")
    assert await shop.deliver() == [200]
    flagged = await eventually(
        lambda: _flagged(s, order_ids["s1"], "refund due"), "the store's late cancellation to flag s1", timeout=5
    )
    assert flagged["status"] == "shipped"

    # --- store-side cancellations before payment end in Cancelled ----------------------------------------------
    s4 = shop.create_order(lines=[(7001, 8001, "S-MUG", 1, "19.90")])
    assert await shop.deliver() == [200, 200]
    order_ids["s4"] = (await eventually(lambda: _find(s, shop_store, s4["id"]), "s4 to arrive"))["id"]
    await s.in_status(order_ids["s4"], "to_order")
    await s.in_status(order_ids["w2"], "to_order")
    shop.cancel_order(s4["id"], reason="customer")
    woo.delete_order(w2["id"])
    assert await shop.deliver() == [200] and await woo.deliver() == [200]
    for name in ("s4", "w2"):
        cancelled = await s.in_status(order_ids[name], "cancelled")
        assert cancelled["status_reason"].startswith("cancelled in the store"), cancelled["status_reason"]
        refused = await eventually(
            lambda name=name: _refused(s, order_ids[name]), f"checkout to refuse the cancelled {name}"
        )
        assert "cancelled" in refused["detail"]

    # The tabs add up: four shipped (one after a refund, one after a reshipment), two cancelled, nothing lost.
    counts = await s.ok("GET", "orders", "/v1/orders/counts")
    assert {k: v for k, v in counts.items() if v} == {"shipped": 4, "cancelled": 2}
    assert sum(Decimal(e["amount"]["amount"]) for e in entries) == Decimal("71.00")
    # No consumer gave up on a message, and no service logged a warning or an error on the way.
    assert await _dead_letters(s) == dict.fromkeys(SERVICES, 0)
    assert _log_problems(s) == []


# --- helpers -------------------------------------------------------------------------------------------------


async def _find(s: Story, store_id: str, external_id: int) -> dict | None:
    """The order of a store order, in whichever tab it is."""
    for status in ("quoting", "to_order", "pending", "processing", "shipped", "cancelled"):
        page = await s.ok("GET", "orders", "/v1/orders", params={"status": status, "store_id": store_id, "limit": 250})
        for item in page["items"]:
            if item["external_order_id"] == str(external_id):
                return item
    return None


async def _sync_orders(s: Story, store_id: str) -> dict[str, int]:
    """Sync Orders, followed to its end: what it found."""
    started = await s.ok("POST", "sync", f"/v1/stores/{store_id}/sync", 202)

    async def finished() -> dict | None:
        job = await s.ok("GET", "sync", f"/v1/sync-jobs/{started['id']}")
        return job if job["status"] != "running" else None

    job = await eventually(finished, "the sync job to finish")
    assert job["status"] == "succeeded", job
    return {k: job[k] for k in ("new", "updated", "unchanged", "skipped")}


async def _checkout(s: Story, order_ids: list[str]) -> dict | None:
    response = await s.call("POST", "checkout", "/v1/checkouts", json={"order_ids": order_ids})
    if response.status_code == 404:  # checkout has not heard of every order yet
        return None
    assert response.status_code == 201, response.text
    return response.json()


async def _reason(s: Story, order_id: str, status: str, words: str) -> dict | None:
    detail = await s.status_of(order_id, status)
    return detail if detail and words in (detail["status_reason"] or "") else None


async def _jobs_by_order(s: Story, order_ids) -> dict[str, dict] | None:
    jobs = {j["order_id"]: j for j in await s.fulfillments() if j["reshipment_id"] is None}
    return jobs if set(order_ids) <= set(jobs) else None


async def _reshipment_job(s: Story, reshipment_id: str) -> dict | None:
    return next((j for j in await s.fulfillments() if j["reshipment_id"] == reshipment_id), None)


async def _warehouse(s: Story, job_id: str, carrier: str, number: str) -> None:
    for action, body, step in (
        ("purchase", None, "quality_check"),
        ("quality-check", {"passed": True}, "packing"),
        ("pack", None, "labelling"),
        ("label", {"carrier": carrier, "tracking_number": number}, "labelling"),
        ("ship", None, "shipped"),
    ):
        done = await s.ok("POST", "tracking", f"/v1/fulfillments/{job_id}/{action}", role="ops", json=body)
        assert done["step"] == step, (action, done)


async def _shopify_fulfillment(s: Story, order_id: int, number: str | None = None) -> dict | None:
    found = [f for f in s.shop.fulfillments.values() if f["order_id"] == order_id]
    if number is not None:
        found = [f for f in found if f["tracking_number"] == number]
    return found[0] if found else None


async def _woo_trackings(s: Story, order_id: int, count: int = 1) -> list[dict] | None:
    found = s.woo.trackings.get(order_id, [])
    return found if len(found) >= count else None


async def _mails(s: Story, recipient: str, count: int = 1) -> list | None:
    found = s.inbox.to(recipient)
    return found if len(found) >= count else None


async def _case(s: Story, order_id: str, case_id: str, state: str) -> dict | None:
    detail = await s.order(order_id)
    case = next(c for c in detail["after_sales"] if c["id"] == case_id)
    return detail if case["state"] == state else None


async def _refused(s: Story, order_id: str) -> dict | None:
    response = await s.call("POST", "checkout", "/v1/checkouts", json={"order_ids": [order_id]})
    return response.json() if response.status_code == 409 else None


async def _flagged(s: Story, order_id: str, words: str) -> dict | None:
    detail = await s.order(order_id)
    return detail if any(words in f for f in detail["flags"]) else None


async def _dead_letters(s: Story) -> dict[str, int]:
    """How many messages each service's dead-letter topic holds."""
    env = s.stack.env
    consumer = AIOKafkaConsumer(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
    await consumer.start()
    try:
        found = {}
        for service in SERVICES:
            topic = env["TOPIC_PREFIX"] + topics.dead_letter(service)
            partitions = consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
            found[service] = sum(ends.values())
        return found
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    partitions = consumer.partitions_for_topic(topic)
    assert partitions, f"{topic} does not exist"
    return partitions


def _log_problems(s: Story) -> list[str]:
    """Warnings and errors the services logged (JSON lines), as 'service: event'."""
    problems = []
    for service in SERVICES:
        for line in (s.stack.log_dir / f"{service}.log").read_text().splitlines():
            record = json.loads(line) if line.startswith("{") else {"level": "error", "event": line}
            if record.get("level") in ("warning", "error", "critical") and not _retried_by_kafka_client(record):
                problems.append(f"{service}: {record.get('event')}")
    return problems


def _retried_by_kafka_client(record: dict) -> bool:
    """aiokafka logs a partition of a just-created topic without a leader yet as an error, then retries it."""
    return str(record.get("logger", "")).startswith("aiokafka") and "NotLeaderForPartitionError" in str(
        record.get("event")
    )
