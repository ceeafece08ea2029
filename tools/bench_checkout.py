"""Benchmark checkout through its real HTTP API, with the service running as a process.

    python -m tools.bench_checkout [--orders 1000] [--quotes 500]

A throw-away database `bench_checkout` gets the checkout schema; the service starts on a free port; one merchant
gets three shipping methods, three rules and a default, and `--orders` To Order orders (through the real
OrderReadyForCheckout handler). Then, timed over HTTP: the rules re-run for every order, one bulk checkout of
them all, and its balance payment (goals: under 2 s together); and `--quotes` shipping quotes one after the other
(goal: p99 under 20 ms). Baselines measured in the same run: `/healthz` round trips on the same client (the HTTP
floor) and the raw PostgreSQL cost of writing as many rows as the checkout writes, in one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from services.checkout import handlers
from services.checkout.settings import CheckoutSettings
from shared.auth import mint_token
from shared.db import make_engine
from shared.events import Address, OrderReadyForCheckout, PayableLine, PayableOrderPayload
from shared.messaging.kafka import delete_topics
from shared.migrations import upgrade
from shared.money import Money
from tools.stack import Stack, free_ports

BENCH_DB = "bench_checkout"
MERCHANT = "bench-merchant"
COUNTRIES = ("DE", "FR", "US", "GB", "ES")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def method(name: str, first: str, step: str, days: tuple[int, int]) -> dict:
    table = {"first_weight_grams": 500, "first_price": first, "step_weight_grams": 500, "step_price": step}
    return {
        "name": name,
        "carrier": name.split()[0],
        "currency": "USD",
        "rates": {c: table for c in COUNTRIES},
        "delivery_days_min": days[0],
        "delivery_days_max": days[1],
        "max_weight_grams": 30_000,
    }


def order(n: int) -> PayableOrderPayload:
    rng = random.Random(n)
    line = PayableLine(
        catalog_variant_id=f"v{n % 50}",
        sku=f"SKU-{n % 50}",
        quantity=rng.randint(1, 3),
        unit_cost=Money.of(f"{rng.randint(200, 4000) / 100:.2f}", "USD"),
        unit_weight_grams=rng.randint(50, 900),
    )
    return PayableOrderPayload(
        store_id=f"store-{n % 3}",
        order_name=f"#{n}",
        currency="USD",
        lines=[line],
        shipping_address=Address(country_code=COUNTRIES[n % len(COUNTRIES)]),
    )


async def recreate_database(settings: CheckoutSettings) -> str:
    admin = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await admin.close()
    return settings.database_url.rsplit("/", 1)[0] + f"/{BENCH_DB}"


async def raw_write_baseline(dsn: str, orders: int) -> float:
    """One transaction writing as many rows as checkout + payment do (a row per order, two events per order)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TEMP TABLE raw (id text, body jsonb)")
        started = time.perf_counter()
        async with conn.transaction():
            rows = [(str(uuid.uuid4()), '{"total": "1.00"}') for _ in range(orders * 3)]
            await conn.executemany("INSERT INTO raw VALUES ($1, $2::jsonb)", rows)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def run(orders: int, quotes: int) -> None:
    base = CheckoutSettings()
    url = await recreate_database(base)
    settings = CheckoutSettings(database_url=url, topic_prefix=f"bench{uuid.uuid4().hex[:6]}.")
    await asyncio.to_thread(upgrade, "services.checkout", settings)
    secret = settings.auth_jwt_secret.get_secret_value()
    merchant = {"Authorization": f"Bearer {mint_token(secret, sub='bench', merchant_id=MERCHANT, role='merchant')}"}
    ops = {"Authorization": f"Bearer {mint_token(secret, sub='bench', merchant_id='ops', role='ops')}"}

    engine = make_engine(settings)
    started = time.perf_counter()
    async with engine.begin() as conn:
        ready = [
            OrderReadyForCheckout(merchant_id=MERCHANT, order_id=f"bench-{n}", payload=order(n)) for n in range(orders)
        ]
        await handlers.on_orders_ready(conn, ready)  # rules are empty yet: the re-run below matches them
    seeded = time.perf_counter() - started
    await engine.dispose()

    env = {"DATABASE_URL": url, "TOPIC_PREFIX": settings.topic_prefix, "TOPIC_PARTITIONS": "4", "LOG_LEVEL": "WARNING"}
    (port,) = free_ports(1)
    stack = Stack(env, ports={"checkout": port}, log_dir=Path(tempfile.mkdtemp(prefix="bench-checkout-")))
    stack.start_all(timeout=60)
    try:
        async with httpx.AsyncClient(base_url=stack.url("checkout"), timeout=60) as http:
            ids = []
            for args in (
                ("YunExpress Global Direct", "3.10", "1.20", (8, 14)),
                ("DHL Express", "12.00", "2.50", (2, 4)),
                ("4PX Standard", "2.80", "1.40", (10, 20)),
            ):
                response = await http.post("/v1/shipping-methods", json=method(*args), headers=ops)
                ids.append(response.raise_for_status().json()["id"])
            rules = [
                {
                    "name": "heavy",
                    "priority": 1,
                    "action": "fastest",
                    "method_ids": ids,
                    "conditions": {"weight_min_grams": 2000},
                },
                {
                    "name": "cheap EU",
                    "priority": 2,
                    "action": "cheapest",
                    "method_ids": ids,
                    "conditions": {"countries": ["DE", "FR", "ES"], "amount_max": "40.00"},
                },
                {
                    "name": "store 1",
                    "priority": 3,
                    "action": "method",
                    "method_ids": [ids[0]],
                    "conditions": {"store_ids": ["store-1"]},
                },
            ]
            for rule in rules:
                (await http.post("/v1/shipping-rules", json=rule, headers=merchant)).raise_for_status()
            (
                await http.put("/v1/shipping-settings", json={"default_method_id": ids[2]}, headers=merchant)
            ).raise_for_status()
            top_up = {"merchant_id": MERCHANT, "amount": {"amount": "1000000.00", "currency": "USD"}, "reference": "b"}
            (await http.post("/v1/balance/top-ups", json=top_up, headers=ops)).raise_for_status()

            for _ in range(20):  # warm the connection pool and the code paths
                await http.get("/healthz")
                await http.get("/v1/shipping-quotes", params={"order_id": "bench-0"}, headers=merchant)

            t0 = time.perf_counter()
            rerun = (await http.post("/v1/shipping-rules/rerun", headers=merchant)).raise_for_status().json()
            t1 = time.perf_counter()
            body = {"order_ids": [f"bench-{n}" for n in range(orders)]}
            checkout = (await http.post("/v1/checkouts", json=body, headers=merchant)).raise_for_status().json()
            t2 = time.perf_counter()
            pay = await http.post(
                f"/v1/checkouts/{checkout['id']}/pay",
                json={"method": "balance"},
                headers={**merchant, "Idempotency-Key": "bench"},
            )
            t3 = time.perf_counter()
            pay.raise_for_status()

            fresh = CheckoutSettings(database_url=url)
            baseline_write = await raw_write_baseline(fresh.asyncpg_dsn, orders)

            # Quotes go to To Order orders: pay used them all, so a second set arrives first.
            engine = make_engine(settings)
            async with engine.begin() as conn:
                await handlers.on_orders_ready(
                    conn,
                    [
                        OrderReadyForCheckout(merchant_id=MERCHANT, order_id=f"bench-{n}", payload=order(n))
                        for n in range(orders, orders + 200)
                    ],
                )
            await engine.dispose()
            quote_ms, health_ms = [], []
            for i in range(quotes):
                q0 = time.perf_counter()
                params = {"order_id": f"bench-{orders + i % 200}", "explain": "true"}
                (await http.get("/v1/shipping-quotes", params=params, headers=merchant)).raise_for_status()
                q1 = time.perf_counter()
                await http.get("/healthz")
                health_ms.append((time.perf_counter() - q1) * 1000)
                quote_ms.append((q1 - q0) * 1000)
    finally:
        stack.stop()
        await delete_topics(base.kafka_bootstrap_servers, settings.topic_prefix)

    wall = t3 - t0
    print(f"checkout benchmark: {orders} orders, 3 methods, 3 rules + default, service on HTTP as a process")
    print(f"  seeding (OrderReadyForCheckout handler, in-process): {seeded:.2f} s")
    print(
        f"  rules re-run over HTTP:        {(t1 - t0) * 1000:8.1f} ms  "
        f"({rerun['orders']} orders, {rerun['flagged']} flagged)"
    )
    print(f"  bulk checkout over HTTP:       {(t2 - t1) * 1000:8.1f} ms  (total {checkout['total']['amount']} USD)")
    print(f"  balance payment over HTTP:     {(t3 - t2) * 1000:8.1f} ms  (status {pay.json()['status']})")
    print(f"  wall time rules+checkout+pay:  {wall:8.3f} s    goal < 2 s: {'met' if wall < 2 else 'NOT met'}")
    print(f"  baseline: raw PostgreSQL, {orders * 3} rows in one transaction: {baseline_write * 1000:.1f} ms")
    print(
        f"  shipping quote ({quotes} sequential, explain=true): p50 {statistics.median(quote_ms):.2f} ms, "
        f"p99 {percentile(quote_ms, 0.99):.2f} ms    goal p99 < 20 ms: "
        f"{'met' if percentile(quote_ms, 0.99) < 20 else 'NOT met'}"
    )
    print(
        f"  baseline: GET /healthz on the same client: p50 {statistics.median(health_ms):.2f} ms, "
        f"p99 {percentile(health_ms, 0.99):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_checkout")
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--quotes", type=int, default=500)
    args = parser.parse_args()
    try:
        asyncio.run(run(args.orders, args.quotes))
    except httpx.HTTPStatusError as exc:
        print(f"benchmark failed: {exc.response.status_code} {exc.response.text}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
