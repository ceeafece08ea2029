"""Tracking benchmark: signed carrier webhooks/s with latency percentiles through the real HTTP API (the tracking
service as a process, on a scratch database), and customer emails/s through the service's sender loop to a local
aiosmtpd server. Each figure comes with a baseline measured in the same run: GET /healthz through the same HTTP
stack, and raw aiosmtplib sends to the same SMTP server without the database.

python -m tools.bench_tracking [--webhooks 2000] [--concurrency 16] [--emails 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import asyncpg
import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from services.tracking.adapters.tables import emails, fulfillments, shipments
from services.tracking.settings import TrackingSettings
from shared.clock import utcnow
from shared.messaging.kafka import delete_topics
from shared.migrations import upgrade
from shared.signatures import hmac_sha256_base64
from tools.stack import Stack, free_ports

SECRET = "bench-aftership-secret"  # noqa: S105 - a throwaway secret for a scratch service


class CountingInbox:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
        return "250 OK"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def timed_requests(make_request, total: int, concurrency: int) -> tuple[float, list[float], int]:
    """(requests/s, latencies in ms, non-2xx count) for `total` requests with `concurrency` in flight."""
    latencies: list[float] = []
    failures = 0
    queue = iter(range(total))

    async def worker() -> None:
        nonlocal failures
        for n in queue:
            start = time.perf_counter()
            response = await make_request(n)
            latencies.append((time.perf_counter() - start) * 1000)
            failures += response.status_code >= 300

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - start), latencies, failures


def line(name: str, rate: float, unit: str, latencies: list[float] | None = None) -> str:
    text = f"  {name:<52} {rate:>9.0f} {unit}"
    if latencies:
        text += f"   p50 {statistics.median(latencies):6.1f} ms   p99 {percentile(latencies, 0.99):6.1f} ms"
    return text


async def seed_shipments(engine, count: int) -> list[str]:
    numbers = [f"BENCH{n:08d}" for n in range(count)]
    order = {"order_name": "#B", "lines": [], "shipping_address": {"country_code": "US"}}
    async with engine.begin() as conn:
        await conn.execute(
            insert(fulfillments),
            [
                {
                    "id": f"f{n}",
                    "order_id": f"o{n}",
                    "merchant_id": "bench",
                    "payment_id": f"p{n}",
                    "step": "shipped",
                    "order": order,
                    "paid_at": utcnow(),
                }
                for n in range(count)
            ],
        )
        await conn.execute(
            insert(shipments),
            [
                {
                    "id": f"s{n}",
                    "fulfillment_id": f"f{n}",
                    "order_id": f"o{n}",
                    "merchant_id": "bench",
                    "carrier": "YunExpress",
                    "tracking_number": number,
                    "tracking_url": "https://t.example/" + number,
                    "shipped_at": utcnow(),
                }
                for n, number in enumerate(numbers)
            ],
        )
    return numbers


async def bench_webhooks(client: httpx.AsyncClient, numbers: list[str], total: int, concurrency: int) -> list[str]:
    tags = ["InfoReceived", "InTransit", "OutForDelivery", "Delivered"]

    def body(n: int) -> bytes:
        number = numbers[n % len(numbers)]
        step = (n // len(numbers)) % len(tags)
        checkpoint = {"checkpoint_time": f"2026-01-0{1 + step}T10:00:00Z", "tag": tags[step], "message": tags[step]}
        payload = {
            "ts": 1767225600 + n,
            "event": "tracking_update",
            "event_id": str(uuid.uuid4()),
            "msg": {"tracking_number": number, "tag": tags[step], "checkpoints": [checkpoint]},
        }
        return json.dumps(payload).encode()

    bodies = [body(n) for n in range(total)]
    signatures = [hmac_sha256_base64(SECRET, b) for b in bodies]

    async def healthz(_: int) -> httpx.Response:
        return await client.get("/healthz")

    async def webhook(n: int) -> httpx.Response:
        return await client.post(
            "/webhooks/aftership",
            content=bodies[n],
            headers={"aftership-hmac-sha256": signatures[n], "content-type": "application/json"},
        )

    await timed_requests(healthz, 200, concurrency)  # warm-up
    base_rate, base_lat, _ = await timed_requests(healthz, total, concurrency)
    rate, lat, failed = await timed_requests(webhook, total, concurrency)
    return [
        f"carrier webhooks ({total} signed events over {len(numbers)} shipments, {concurrency} in flight):",
        line("baseline: GET /healthz, same HTTP stack", base_rate, "req/s", base_lat),
        line("POST /webhooks/aftership (verify, dedupe, timeline)", rate, "events/s", lat),
        f"  non-2xx answers: {failed}",
    ]


async def bench_emails(engine, inbox: CountingInbox, smtp_port: int, total: int) -> list[str]:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "shipping@bench.example", "c@bench.example", "baseline"
    message.set_content("text")
    message.add_alternative("<p>html</p>", subtype="html")
    start = time.perf_counter()
    for _ in range(total):
        await aiosmtplib.send(message, hostname="127.0.0.1", port=smtp_port)
    base_rate = total / (time.perf_counter() - start)

    before = inbox.count
    async with engine.begin() as conn:
        await conn.execute(
            insert(emails),
            [
                {
                    "id": f"e{n}",
                    "shipment_id": f"s{n}",
                    "merchant_id": "bench",
                    "recipient": f"c{n}@bench.example",
                    "language": "en",
                    "subject": "Your order",
                    "text_body": "text",
                    "html_body": "<p>html</p>",
                    "status": "pending",
                }
                for n in range(total)
            ],
        )
    start = time.perf_counter()
    while inbox.count - before < total:
        if time.perf_counter() - start > 120:
            raise TimeoutError(f"only {inbox.count - before} of {total} emails arrived")
        await asyncio.sleep(0.01)
    rate = total / (time.perf_counter() - start)
    return [
        f"customer emails ({total}, one sender loop, one SMTP connection per message):",
        line("baseline: aiosmtplib.send, no database", base_rate, "emails/s"),
        line("service sender loop (claim row, send, mark sent)", rate, "emails/s"),
    ]


async def main(webhooks: int, concurrency: int, email_count: int) -> None:
    settings = TrackingSettings()
    database = f"bench_tracking_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(settings.asyncpg_dsn)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = f"{settings.database_url.rsplit('/', 1)[0]}/{database}"
    inbox = CountingInbox()
    smtp_port, http_port = free_ports(2)
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = {
        "DATABASE_URL": url,
        "TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}.",
        "TOPIC_PARTITIONS": "1",
        "AFTERSHIP_WEBHOOK_SECRET": SECRET,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "EMAIL_POLL_SECONDS": "0.05",
        "LOG_LEVEL": "WARNING",
    }
    stack = Stack(env, ports={"tracking": http_port}, log_dir=Path(tempfile.mkdtemp(prefix="bench-tracking-")))
    engine = create_async_engine(url)
    try:
        await asyncio.to_thread(upgrade, "services.tracking", TrackingSettings(database_url=url))
        numbers = await seed_shipments(engine, max(webhooks // 4, 1))
        stack.start_all(timeout=60)
        async with httpx.AsyncClient(base_url=stack.url("tracking"), timeout=30) as client:
            report = await bench_webhooks(client, numbers, webhooks, concurrency)
        report += await bench_emails(engine, inbox, smtp_port, min(email_count, len(numbers)))
        print(f"tracking benchmark on {os.cpu_count()} CPUs (service, PostgreSQL, SMTP server and client share them)")
        print("\n".join(report))
    finally:
        stack.stop()
        controller.stop()
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        await delete_topics(settings.kafka_bootstrap_servers, env["TOPIC_PREFIX"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tools.bench_tracking")
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--emails", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.webhooks, args.concurrency, args.emails))
