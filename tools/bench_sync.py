"""Benchmark the sync service as a separate process: webhook ingest and a rate-limited backfill.

    python -m tools.bench_sync [--webhooks 2000] [--concurrency 50,100,200,500] [--rate 500] [--orders 10000]
    python -m tools.bench_sync --quick

1. Ingest: signed Shopify orders/create webhooks (each a new order) from `--concurrency` requests in flight, at most
   `--webhooks` per level or `--seconds` each: accepted/s, p50 and p99 response time. Baseline, same run, same client
   and concurrency: GET /healthz of the same process (what this client and machine can do at all). Then an
   open-loop phase at a fixed `--rate` per second (the latency a steady load sees).
2. Backfill: `--orders` orders in the Shopify emulator (250 per page) synced by one Sync Orders job under the
   Standard-plan limit (bucket 40, draining 2/s, full when the job starts, as after a busy hour). Compared with the
   rate-limit floor (the time the bucket alone imposes) and with fetching the same pages and doing nothing else.

The service runs with `tools.stack.Stack` (only sync) against a throw-away database `bench_sync`; the emulator
runs in this process. Figures are printed; nothing is asserted about speed, but the tool exits 1 if a webhook was
not accepted or the job did not sync every order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from services.sync.adapters.store_clients import ShopifyClient
from shared.messaging.kafka import delete_topics
from shared.settings import ServiceSettings
from tools import demo
from tools.emulators import serve
from tools.emulators.shopify import LeakyBucket, ShopifyEmulator
from tools.stack import Stack, free_ports

BENCH_DB = "bench_sync"
PAGE = 250


async def fresh_database(settings: ServiceSettings) -> str:
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await conn.close()
    return f"{settings.database_url.rsplit('/', 1)[0]}/{BENCH_DB}"


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values or [0.0])[0]


class Connection:
    """A minimal HTTP/1.1 keep-alive client: httpx's pool, not the server, limits a load generator at high
    concurrency, so the load goes through plain asyncio streams, one connection per request in flight."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, base: str) -> Connection:
        url = httpx.URL(base)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        return cls(reader, writer, f"{url.host}:{url.port}")

    @staticmethod
    def encode(host: str, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return head.encode() + b"\r\n" + body

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        return await self.exchange(self.encode(self.host, method, path, headers, body))

    async def exchange(self, request: bytes) -> int:
        """Send a request encoded beforehand (`encode`) and read the answer; its status."""
        self.writer.write(request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).lower()  # one read for the status line and headers
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            await self.reader.readexactly(int(head[at + 17 : head.index(b"\r\n", at + 2)]))
        return int(head.split(None, 2)[1])

    def close(self) -> None:
        self.writer.close()


Request = tuple[str, str, dict[str, str], bytes]


async def closed_loop(base: str, requests: list[Request], concurrency: int, seconds: float) -> tuple:
    """`concurrency` connections send the prepared requests back to back: (accepted, sent, elapsed, latencies)."""
    queue = iter(requests)
    latencies: list[float] = []
    accepted = sent = 0
    connections = [await Connection.open(base) for _ in range(concurrency)]
    deadline = time.perf_counter() + seconds

    async def worker(connection: Connection) -> None:
        nonlocal accepted, sent
        for request in queue:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            status = await connection.request(*request)
            latencies.append(time.perf_counter() - started)
            sent += 1
            accepted += status == 200

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return accepted, sent, elapsed, latencies


async def open_loop(base: str, requests: list[Request], rate: float, connections: int = 200) -> tuple:
    """Requests started at a fixed rate whatever the answers do (latency includes waiting for a free
    connection): (accepted, sent, elapsed, latencies)."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(base))
    latencies: list[float] = []
    statuses: list[int] = []

    async def one(request: Request) -> None:
        started = time.perf_counter()
        connection = await pool.get()
        statuses.append(await connection.request(*request))
        latencies.append(time.perf_counter() - started)
        pool.put_nowait(connection)

    began = time.perf_counter()
    tasks = []
    for i, request in enumerate(requests):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    while not pool.empty():
        pool.get_nowait().close()
    return statuses.count(200), len(statuses), elapsed, latencies


def line(label: str, accepted: int, sent: int, elapsed: float, latencies: list[float]) -> str:
    return (
        f"  {label:<28} {accepted:>6}/{sent:<6} {accepted / elapsed:>8.0f}/s   "
        f"p50 {percentile(latencies, 50) * 1000:>7.1f} ms   p99 {percentile(latencies, 99) * 1000:>7.1f} ms"
    )


def webhooks(shop: ShopifyEmulator, count: int) -> list[Request]:
    requests = []
    for _ in range(count):
        body = json.dumps(shop.create_order(queue_webhooks=False)).encode()
        requests.append(("POST", "/webhooks/shopify", shop.signed_headers("orders/create", body), body))
    return requests


async def settle(dsn: str) -> None:
    """Wait (a minute at most) until every accepted delivery is applied and its events published."""
    query = (
        "SELECT (SELECT count(*) FROM sync.webhook_deliveries WHERE applied_at IS NULL)"
        " + (SELECT count(*) FROM sync.outbox)"
    )
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(60):
            while True:
                if not await conn.fetchval(query):
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        print("  (still applying after 60 s)")
    finally:
        await conn.close()


async def bench_ingest(base: str, shop: ShopifyEmulator, args, dsn: str) -> bool:
    ok = True
    print(
        f"\nWebhook ingest (signed orders/create, a new order each; at most {args.webhooks} or {args.seconds:.0f} s "
        "per level)"
    )
    print(f"  {'':<28} {'accepted/sent':>13} {'rate':>10}")
    for concurrency in args.concurrency:
        health: list[Request] = [("GET", "/healthz", {}, b"")] * args.webhooks
        result = await closed_loop(base, health, concurrency, args.seconds)
        print(line(f"baseline GET /healthz  c={concurrency}", *result))
        result = await closed_loop(base, webhooks(shop, args.webhooks), concurrency, args.seconds)
        print(line(f"webhooks               c={concurrency}", *result))
        ok &= result[0] == result[1]
    if args.rate:
        await settle(dsn)  # a steady load's latency, not the tail of the last burst's applying and publishing
        result = await open_loop(base, webhooks(shop, int(args.rate * args.seconds)), args.rate)
        print(line(f"webhooks at a steady {args.rate:.0f}/s", *result))
        ok &= result[0] == result[1]
    return ok


async def bench_backfill(base: str, args) -> bool:
    shop = ShopifyEmulator(f"backfill-{uuid.uuid4().hex[:6]}.myshopify.com", drain_per_second=args.drain)
    for _ in range(args.orders):
        shop.create_order(queue_webhooks=False)
    pages = -(-args.orders // PAGE)
    floor = pages / args.drain  # a full bucket: every call waits for one drained slot
    headers = demo.auth("merchant", f"bench-{uuid.uuid4().hex[:6]}")
    async with serve(shop.app) as shop_url, httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as http:
        # Fetching alone, through the same client code, under the same full bucket.
        shop.bucket = LeakyBucket(40, args.drain, level=40)
        client = ShopifyClient(
            shop_url, shop.access_token, httpx.AsyncClient(timeout=30), max_retries=3, backoff_seconds=1
        )
        began, cursor, fetched = time.perf_counter(), None, 0
        while True:
            page = await client.list_orders(updated_since=None, cursor=cursor)
            fetched += len(page.orders)
            if (cursor := page.next) is None:
                break
        fetch_only = time.perf_counter() - began
        await client.aclose()

        store = (
            (
                await http.post(
                    "/v1/stores",
                    json={
                        "platform": "shopify",
                        "shop_domain": shop.shop,
                        "name": "Backfill",
                        "access_token": shop.access_token,
                        "webhook_secret": shop.webhook_secret,
                        "api_url": shop_url,
                    },
                )
            )
            .raise_for_status()
            .json()
        )
        shop.bucket = LeakyBucket(40, args.drain, level=40)
        began = time.perf_counter()
        job = (await http.post(f"/v1/stores/{store['id']}/sync")).raise_for_status().json()
        while job["status"] == "running":
            await asyncio.sleep(0.1)
            job = (await http.get(f"/v1/sync-jobs/{job['id']}")).json()
        elapsed = time.perf_counter() - began
    throttled = shop.faults.count("GET", "/orders.json", 429)
    print(
        f"\nBackfill: {args.orders} orders, {pages} pages of {PAGE}, bucket 40 full at the start, draining "
        f"{args.drain:g}/s"
    )
    print(f"  rate-limit floor                 {floor:>7.2f} s")
    print(f"  fetch only (same client)         {fetch_only:>7.2f} s   ({fetched} orders)")
    print(
        f"  sync job (fetch + record + outbox) {elapsed:>5.2f} s   status {job['status']}, new {job['new']}, "
        f"pages {job['pages']}, 429s answered {throttled}"
    )
    print(
        f"  overhead vs floor {100 * (elapsed - floor) / floor if floor else float('nan'):+.1f} %, "
        f"vs fetch only {100 * (elapsed - fetch_only) / fetch_only:+.1f} %"
    )
    return job["status"] == "succeeded" and job["new"] == args.orders


async def main_async(args) -> int:
    database_url = await fresh_database(ServiceSettings())
    (port,) = free_ports(1)
    env = {
        "DATABASE_URL": database_url,
        "TOPIC_PREFIX": f"bsync{uuid.uuid4().hex[:6]}.",
        "TOPIC_PARTITIONS": "4",
        "LOG_LEVEL": "WARNING",
        "SYNC_INTERVAL_SECONDS": "3600",
    }
    stack = Stack(env, ports={"sync": port}, log_dir=Path(tempfile.mkdtemp(prefix="bench_sync_")))
    await asyncio.to_thread(stack.migrate)
    stack.start("sync")
    try:
        await asyncio.to_thread(stack.wait_ready, 60)
        base = stack.url("sync")
        shop = ShopifyEmulator(f"ingest-{uuid.uuid4().hex[:6]}.myshopify.com")
        async with httpx.AsyncClient(base_url=base, headers=demo.auth("merchant", "bench-ingest")) as http:
            (
                await http.post(
                    "/v1/stores",
                    json={
                        "platform": "shopify",
                        "shop_domain": shop.shop,
                        "name": "Ingest",
                        "access_token": shop.access_token,
                        "webhook_secret": shop.webhook_secret,
                    },
                )
            ).raise_for_status()
        print(
            f"sync service: one process (uvicorn, 1 worker) on {base}; this machine's cores are shared with the "
            "load generator, PostgreSQL and Kafka"
        )
        ok = await bench_ingest(base, shop, args, ServiceSettings(database_url=database_url).asyncpg_dsn)
        ok &= await bench_backfill(base, args)
    finally:
        stack.stop()
        await delete_topics(ServiceSettings().kafka_bootstrap_servers, env["TOPIC_PREFIX"])
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_sync")
    parser.add_argument("--webhooks", type=int, default=2000, help="webhooks per concurrency level at most")
    parser.add_argument("--seconds", type=float, default=10.0, help="time per concurrency level at most")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[50, 100, 200, 500])
    parser.add_argument("--rate", type=float, default=500.0, help="the steady-rate phase (0 to skip)")
    parser.add_argument("--orders", type=int, default=10_000, help="orders to backfill")
    parser.add_argument("--drain", type=float, default=2.0, help="the emulator's bucket drain rate per second")
    parser.add_argument("--quick", action="store_true", help="a short run: 500 webhooks, 2 levels, 2,000 orders")
    args = parser.parse_args()
    if args.quick:
        args.webhooks, args.seconds, args.concurrency, args.rate, args.orders = 500, 5.0, [50, 200], 200.0, 2000
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
