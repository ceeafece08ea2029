"""Benchmark the Manage Orders page at scale, through the real HTTP API of the orders service run as a process.

    python -m tools.bench_orders [--orders 1000000] [--others 10] [--other-orders 50000] [--requests 300]
                                 [--events 3000]

In a throw-away database `bench_orders`: `--orders` orders for one merchant and `--other-orders` for each of
`--others` merchants beside them, generated in SQL (INSERT ... SELECT generate_series), spread over the tabs and
a year; the tab counters are built from them, as the service keeps them. Then, one request at a time:
  - baseline: `SELECT 1` round trip to PostgreSQL, and GET /healthz of the service (HTTP without the database);
  - GET /v1/orders/counts (every tab) and GET /v1/orders?status=... (first page of 50) for the big merchant;
  - for comparison, the counts without the counter table (GROUP BY status over the merchant's rows, in SQL) and
    the counts with a filter (the API's only way to count a filtered view).
Last, `--events` OrderSynced events go through Kafka to the running service: events/s until all are stored.
Prints p50/p99 in milliseconds. Asserts nothing about speed; exits 1 if an answer is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from services.orders.settings import OrdersSettings
from shared import topics
from shared.auth import mint_token
from shared.events import Address, OrderSynced, OrderSyncedPayload, StoreOrder, StoreOrderLine
from shared.messaging.kafka import by_key, delete_topics
from shared.migrations import upgrade
from shared.money import Money
from shared.settings import ServiceSettings
from tools.stack import free_ports

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "bench_orders"
MERCHANT = "bench-big"
TABS = ("quoting", "to_order", "pending", "processing", "shipped", "refunds", "resent", "cancelled")

# One order per generate_series value; the status by a fixed share of each hundred.
GENERATE = """
INSERT INTO orders.orders (id, merchant_id, store_id, external_order_id, order_name, status, status_reason, currency,
    total_price, customer_email, customer_name, shipping_address, country_code, lines, store_updated_at, created_at,
    updated_at)
SELECT $1 || '-' || g, $1, $1 || '-store-' || (g % 3), g::text, '#' || (1000 + g),
    CASE WHEN g % 100 < 5 THEN 'quoting' WHEN g % 100 < 15 THEN 'to_order' WHEN g % 100 < 18 THEN 'pending'
         WHEN g % 100 < 33 THEN 'processing' WHEN g % 100 < 88 THEN 'shipped' WHEN g % 100 < 90 THEN 'refunds'
         WHEN g % 100 < 91 THEN 'resent' ELSE 'cancelled' END,
    NULL, 'USD', 19.90 + (g % 50), 'customer' || g || '@example.com', 'Customer ' || g,
    jsonb_build_object('name', 'Customer ' || g, 'address1', 'Main St ' || g, 'city', 'Springfield',
                       'country_code', (ARRAY['US', 'GB', 'DE', 'FR', 'BR', 'PT'])[1 + g % 6]),
    (ARRAY['US', 'GB', 'DE', 'FR', 'BR', 'PT'])[1 + g % 6],
    jsonb_build_array(jsonb_build_object(
        'store', jsonb_build_object('external_line_id', 'l' || g, 'external_product_id', 'p1',
                                    'external_variant_id', 'v1', 'sku', 'SKU-1', 'title', 'Mug', 'quantity', 1,
                                    'unit_price', jsonb_build_object('amount', '19.90', 'currency', 'USD')),
        'connection', NULL)),
    now(), now() - (g % 31536000) * interval '1 second', now()
FROM generate_series(1, $2) AS g
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


def line(name: str, samples: list[float]) -> str:
    p50, p99 = percentiles(samples)
    return f"  {name:<58} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   (n={len(samples)})"


async def admin(base: ServiceSettings, sql: str) -> None:
    conn = await asyncpg.connect(base.asyncpg_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def generate(dsn: str, args: argparse.Namespace) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(GENERATE, MERCHANT, args.orders)
        for n in range(args.others):
            await conn.execute(GENERATE, f"bench-other-{n}", args.other_orders)
        await conn.execute(
            "INSERT INTO orders.order_counts SELECT merchant_id, status, count(*) FROM orders.orders GROUP BY 1, 2"
        )
        await conn.execute("VACUUM ANALYZE orders.orders")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def timed(n: int, call) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def start_service(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "services.orders", "serve"],
        env={**os.environ, **env, "PORT": str(port), "LOG_LEVEL": "WARNING"},
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def wait_ready(http: httpx.AsyncClient, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the orders service exited; see its log")
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the orders service did not become ready")


def synced(n: int, run: str) -> OrderSynced:
    now = datetime.now(UTC)
    return OrderSynced(
        merchant_id="bench-sync",
        order_id=f"{run}-{n}",
        payload=OrderSyncedPayload(
            order=StoreOrder(
                store_id="bench-sync-store",
                store_name="Bench",
                platform="shopify",
                external_order_id=f"{run}-{n}",
                order_name=f"#{n}",
                currency="USD",
                total_price=Money.of("19.90", "USD"),
                financial_status="paid",
                shipping_address=Address(name="C", address1="A", city="B", country_code="US"),
                lines=[
                    StoreOrderLine(
                        external_line_id="l1",
                        external_product_id="p1",
                        external_variant_id="v1",
                        sku="SKU-1",
                        quantity=1,
                        unit_price=Money.of("19.90", "USD"),
                    )
                ],
                store_created_at=now,
                store_updated_at=now,
            )
        ),
    )


async def consumer_throughput(settings: ServiceSettings, dsn: str, n: int) -> tuple[float, int]:
    """Produce n OrderSynced (a connected product, so each one moves to To Order and publishes 3 events) and
    time until the service has stored them all."""
    run = uuid.uuid4().hex[:8]
    events = [synced(i, run) for i in range(n)]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True, linger_ms=5, partitioner=by_key
    )
    await producer.start()
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        sends = [
            await producer.send(settings.topic(topics.STORE_ORDERS), e.model_dump_json().encode(), key=e.key())
            for e in events
        ]
        await asyncio.gather(*sends)
        stored = 0
        deadline = time.monotonic() + 300
        while stored < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            stored = await conn.fetchval("SELECT count(*) FROM orders.orders WHERE id LIKE $1", f"{run}-%")
        elapsed = time.perf_counter() - started
        return elapsed, stored
    finally:
        await conn.close()
        await producer.stop()


async def run(args: argparse.Namespace) -> int:
    base = ServiceSettings()
    await admin(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    await admin(base, f'CREATE DATABASE "{BENCH_DB}"')
    url = base.database_url.rsplit("/", 1)[0] + f"/{BENCH_DB}"
    env = {"DATABASE_URL": url, "TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}.", "TOPIC_PARTITIONS": "4"}
    settings = OrdersSettings(database_url=url, topic_prefix=env["TOPIC_PREFIX"], topic_partitions=4)
    dsn = settings.asyncpg_dsn
    process = None
    failed = False
    try:
        await asyncio.to_thread(upgrade, "services.orders", settings)  # alembic runs its own event loop
        total = args.orders + args.others * args.other_orders
        seconds = await generate(dsn, args)
        print(f"generated {total:,} orders ({args.orders:,} for {MERCHANT}) in {seconds:.1f} s")
        conn = await asyncpg.connect(dsn)
        await conn.execute(
            "INSERT INTO orders.catalog_variants (id, sku, title, unit_cost, currency, weight_grams)"
            " VALUES ('cv-bench', 'CAT-BENCH', 'Mug', 4.20, 'USD', 350);"
            "INSERT INTO orders.product_connections (id, merchant_id, store_id, external_product_id,"
            " external_variant_id, catalog_variant_id) VALUES ('pc-bench', 'bench-sync', 'bench-sync-store', 'p1',"
            " 'v1', 'cv-bench')"
        )

        port = free_ports(1)[0]
        log = ROOT / ".local" / "logs" / "bench_orders.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        process = start_service(env, port, log)
        token = mint_token(base.auth_jwt_secret.get_secret_value(), sub="bench", merchant_id=MERCHANT, role="merchant")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
            await wait_ready(http, process)
            counts = (await http.get("/v1/orders/counts")).json()
            expected = dict(
                await conn.fetch(
                    "SELECT status, count(*) FROM orders.orders WHERE merchant_id = $1 GROUP BY 1", MERCHANT
                )
            )
            if any(counts[t] != expected.get(t, 0) for t in TABS) or sum(counts.values()) != args.orders:
                print(f"WRONG counts: {counts} vs {expected}")
                failed = True
            page = (await http.get("/v1/orders", params={"status": "processing"})).json()
            if len(page["items"]) != 50 or any(o["status"] != "processing" for o in page["items"]):
                print("WRONG first page")
                failed = True
            n = args.requests
            for _ in range(20):  # warm the connection pools and caches
                await http.get("/v1/orders/counts")
                await http.get("/v1/orders", params={"status": "shipped"})
            print(f"\nlatency, one request at a time ({args.orders:,} orders of one merchant among {total:,}):")
            print(line("baseline: SELECT 1 (asyncpg round trip)", await timed(n, lambda: conn.fetchval("SELECT 1"))))
            print(line("baseline: GET /healthz (HTTP, no database)", await timed(n, lambda: http.get("/healthz"))))
            print(line("GET /v1/orders/counts (every tab)", await timed(n, lambda: http.get("/v1/orders/counts"))))
            for tab in ("shipped", "processing", "refunds"):
                print(
                    line(
                        f"GET /v1/orders?status={tab} (first page, 50)",
                        await timed(n, lambda tab=tab: http.get("/v1/orders", params={"status": tab})),
                    )
                )
            print(
                line(
                    "GET /v1/orders?status=shipped&sort=oldest&country=PT",
                    await timed(
                        n,
                        lambda: http.get("/v1/orders", params={"status": "shipped", "sort": "oldest", "country": "PT"}),
                    ),
                )
            )
            few = max(5, n // 30)
            group_by = "SELECT status, count(*) FROM orders.orders WHERE merchant_id = $1 GROUP BY status"
            print(
                line(
                    "comparison: counts by GROUP BY in SQL (no counters)",
                    await timed(few, lambda: conn.fetch(group_by, MERCHANT)),
                )
            )
            print(
                line(
                    "comparison: GET /v1/orders/counts?country=PT (filtered)",
                    await timed(few, lambda: http.get("/v1/orders/counts", params={"country": "PT"})),
                )
            )
            seconds, stored = await consumer_throughput(settings, dsn, args.events)
            print(
                f"\nOrderSynced consumer: {stored}/{args.events} events stored in {seconds:.2f} s = "
                f"{stored / seconds:,.0f} events/s (each: new order, connections, packaging, 3 events out)"
            )
            if stored != args.events:
                failed = True
        await conn.close()
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=20)
        if not args.keep:
            await admin(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            await delete_topics(base.kafka_bootstrap_servers, settings.topic_prefix)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_orders", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders of the measured merchant")
    parser.add_argument("--others", type=int, default=10, help="other merchants")
    parser.add_argument("--other-orders", type=int, default=50_000, help="orders of each other merchant")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per figure")
    parser.add_argument("--events", type=int, default=3000, help="OrderSynced events for the consumer figure")
    parser.add_argument("--keep", action="store_true", help="keep the bench_orders database afterwards")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
