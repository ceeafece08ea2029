"""Benchmark the real event path of one service pair: outbox -> relay -> Kafka -> idempotent consumer.

    python -m tools.bench_pipeline [--events 5000] [--producers 8]

A producer side (transactional outbox + `OutboxRelay`) and a consumer side (`EventConsumer` whose handler records
every `OrderStatusChanged` in a `received` table) run in this process against a throw-away database
`bench_pipeline` and topics under a unique prefix. `--producers` concurrent writers each commit ONE event per
transaction, as a service does for each state change. The tool prints throughput and delivery latency next to a
baseline (raw single-row INSERT commits/s of the same PostgreSQL at the same concurrency). It asserts nothing about
speed, but it does check that every event was handled exactly once and exits 1 otherwise.

Connection settings come from the environment through `ServiceSettings` (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import Table, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import topics
from shared.clock import utcnow
from shared.db import make_engine, service_metadata
from shared.events import IntegrationEvent, OrderStatusChanged, OrderStatusChangedPayload
from shared.logging import configure_logging
from shared.messaging.consumer import EventConsumer
from shared.messaging.kafka import delete_topics, ensure_topics, make_consumer, make_producer
from shared.messaging.outbox import OutboxRelay, add_events, notify_trigger_ddl
from shared.settings import ServiceSettings

BENCH_DB = "bench_pipeline"
PRODUCER_SCHEMA = "bench_producer"
CONSUMER_SCHEMA = "bench_consumer"
PRODUCER_SERVICE = "bench-producer"
CONSUMER_SERVICE = "bench-consumer"

WAIT_TIMEOUT_S = 120.0
ASSIGNMENT_TIMEOUT_S = 60.0
BASELINE_SECONDS = 3.0

RECEIVED_DDL = """CREATE TABLE bench_consumer.received (
    event_id uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT clock_timestamp()
)"""
RAW_DDL = "CREATE TABLE bench_producer.raw (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, x bigint)"
RAW_INSERT = "INSERT INTO bench_producer.raw(x) VALUES ($1)"
INSERT_RECEIVED = text("INSERT INTO bench_consumer.received (event_id, occurred_at) VALUES (:event_id, :at)")


class BenchFailed(Exception):
    """The pipeline lost, duplicated or could not deliver events; the message says what."""


@dataclass
class Figures:
    events: int
    producers: int
    baseline_commits_per_s: float = 0.0
    write_seconds: float = 0.0
    end_to_end_seconds: float = 0.0
    latency_ms: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    relay_ms: tuple[float, float, float, float] | None = None  # occurred_at -> relay's send to Kafka
    consume_ms: tuple[float, float, float, float] | None = None  # relay's send -> handled
    handled: int = 0
    duplicates: int = 0
    missing: int = 0
    unexpected: int = 0
    kafka_messages: int = 0
    dead_lettered: int = 0
    problems: list[str] = field(default_factory=list)


# --- setup -----------------------------------------------------------------------------------------------------


def bench_settings(base: ServiceSettings, *, service_name: str, schema: str, prefix: str, pool: int):
    bench_url = make_url(base.database_url).set(database=BENCH_DB).render_as_string(hide_password=False)
    return ServiceSettings(
        service_name=service_name,
        db_schema=schema,
        topic_prefix=prefix,
        database_url=bench_url,
        kafka_bootstrap_servers=base.kafka_bootstrap_servers,
        db_pool_size=pool,
    )


async def recreate_database(base: ServiceSettings) -> None:
    conn = await asyncpg.connect(base.asyncpg_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {BENCH_DB}")
    finally:
        await conn.close()


async def drop_database(base: ServiceSettings) -> None:
    conn = await asyncpg.connect(base.asyncpg_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    finally:
        await conn.close()


async def create_schemas(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for schema in (PRODUCER_SCHEMA, CONSUMER_SCHEMA):
            await conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            await conn.run_sync(service_metadata(schema).create_all)
        for ddl in notify_trigger_ddl(PRODUCER_SCHEMA):
            await conn.exec_driver_sql(ddl)
        await conn.exec_driver_sql(RECEIVED_DDL)
        await conn.exec_driver_sql(RAW_DDL)


async def message_counts(settings: ServiceSettings, names: list[str]) -> dict[str, int]:
    """Messages on each topic: the sum of its partitions' end offsets (nothing is deleted from them here)."""
    client = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await client.start()
    try:
        counts = {}
        for name in names:  # this run created the topics, with the settings' partition count
            tps = [TopicPartition(name, p) for p in range(settings.topic_partitions)]
            counts[name] = sum((await client.end_offsets(tps)).values())
        return counts
    finally:
        await client.stop()


async def send_timestamps(settings: ServiceSettings, topic: str, expected: int) -> dict[uuid.UUID, float]:
    """Read the topic back: event id -> the record's CreateTime (epoch s), stamped when the relay sent it."""
    client = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    await client.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        client.assign(tps)
        await client.seek_to_beginning(*tps)
        stamps: dict[uuid.UUID, float] = {}
        deadline = time.perf_counter() + 10
        while len(stamps) < expected and time.perf_counter() < deadline:
            for records in (await client.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    event_id = uuid.UUID(json.loads(record.value)["event_id"])
                    stamps.setdefault(event_id, record.timestamp / 1000)  # first send of a redelivered one
        return stamps
    finally:
        await client.stop()


def percentiles(values: list[float]) -> tuple[float, float, float, float]:
    """p50, p95, p99 (linear interpolation, as percentile_cont) and max."""
    ordered = sorted(values)

    def cont(q: float) -> float:
        pos = q * (len(ordered) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    return cont(0.5), cont(0.95), cont(0.99), ordered[-1]


async def stage_latencies(probe: asyncpg.Connection, figures: Figures, stamps: dict[uuid.UUID, float]) -> None:
    relay, consume = [], []
    for row in await probe.fetch("SELECT event_id, occurred_at, handled_at FROM bench_consumer.received"):
        sent = stamps.get(row["event_id"])
        if sent is not None:
            relay.append((sent - row["occurred_at"].timestamp()) * 1000)
            consume.append((row["handled_at"].timestamp() - sent) * 1000)
    if relay:
        figures.relay_ms, figures.consume_ms = percentiles(relay), percentiles(consume)


# --- baseline --------------------------------------------------------------------------------------------------


async def raw_insert_baseline(dsn: str, concurrency: int, seconds: float) -> float:
    """Commits/s of single-row autocommit INSERTs on `concurrency` connections at once."""
    conns = [await asyncpg.connect(dsn) for _ in range(concurrency)]
    try:
        for conn in conns:  # prepare outside the timed window
            await conn.execute(RAW_INSERT, 0)
        go = asyncio.Event()

        async def hammer(conn: asyncpg.Connection) -> int:
            await go.wait()
            done, deadline = 0, time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                await conn.execute(RAW_INSERT, done)
                done += 1
            return done

        workers = [asyncio.create_task(hammer(c)) for c in conns]
        await asyncio.sleep(0)
        started = time.perf_counter()
        go.set()
        total = sum(await asyncio.gather(*workers))
        return total / (time.perf_counter() - started)
    finally:
        for conn in conns:
            await conn.close()


# --- pipeline --------------------------------------------------------------------------------------------------


async def write_events(engine: AsyncEngine, outbox: Table, n: int, writers: int, run_id: str) -> list[uuid.UUID]:
    """`writers` concurrent writers commit `n` events in total, one event per transaction."""
    next_index = iter(range(n))
    written: list[uuid.UUID] = []
    correlation = uuid.uuid4().hex

    async def writer() -> None:
        for i in next_index:  # one shared iterator: the writers split the work
            event = OrderStatusChanged(
                merchant_id="bench",
                order_id=f"bench-{run_id}-{i}",
                occurred_at=utcnow(),
                correlation_id=correlation,
                payload=OrderStatusChangedPayload(from_status="pending", to_status="processing"),
            )
            async with engine.begin() as conn:
                await add_events(conn, outbox, event)
            written.append(event.event_id)

    await asyncio.gather(*(writer() for _ in range(writers)))
    return written


async def wait_until_handled(probe: asyncpg.Connection, n: int, watched: list[asyncio.Task], max_wait: float) -> int:
    """Poll `received` until it holds n rows; returns the count reached (less than n after `max_wait` s)."""
    deadline = time.perf_counter() + max_wait
    count = 0
    while time.perf_counter() < deadline:
        count = await probe.fetchval("SELECT count(*) FROM bench_consumer.received")
        if count >= n:
            return count
        for task in watched:
            if task.done():
                exc = None if task.cancelled() else task.exception()
                raise BenchFailed(f"{task.get_name()} stopped early: {exc!r}")
        await asyncio.sleep(0.02)
    return count


async def wait_until_outbox_empty(probe: asyncpg.Connection, max_wait: float) -> int:
    """The relay deletes rows after Kafka acks them, possibly just after the consumer already handled them."""
    deadline = time.perf_counter() + max_wait
    while True:
        left = await probe.fetchval("SELECT count(*) FROM bench_producer.outbox")
        if left == 0 or time.perf_counter() >= deadline:
            return left
        await asyncio.sleep(0.05)


async def wait_for_assignment(consumer: AIOKafkaConsumer, partitions: int, watched: asyncio.Task) -> None:
    deadline = time.perf_counter() + ASSIGNMENT_TIMEOUT_S
    while len(consumer.assignment()) < partitions:
        if watched.done():
            raise BenchFailed(f"consumer stopped before joining its group: {watched.exception()!r}")
        if time.perf_counter() >= deadline:
            raise BenchFailed(f"consumer got {len(consumer.assignment())} of {partitions} partitions")
        await asyncio.sleep(0.05)


async def collect_figures(
    probe: asyncpg.Connection, figures: Figures, written: list[uuid.UUID], started_at: datetime
) -> None:
    row = await probe.fetchrow(
        """
        WITH lat AS (
            SELECT event_id, handled_at, extract(epoch FROM handled_at - occurred_at) * 1000 AS ms
            FROM bench_consumer.received
        )
        SELECT count(*) AS rows, count(DISTINCT event_id) AS ids, max(handled_at) AS last_handled,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms) AS pct, max(ms) AS max_ms
        FROM lat
        """
    )
    figures.handled = row["rows"]
    figures.duplicates = row["rows"] - row["ids"]
    if row["last_handled"] is not None:
        figures.end_to_end_seconds = (row["last_handled"] - started_at).total_seconds()
        p50, p95, p99 = row["pct"]
        figures.latency_ms = (p50, p95, p99, float(row["max_ms"]))
    received = {r["event_id"] for r in await probe.fetch("SELECT event_id FROM bench_consumer.received")}
    expected = set(written)
    figures.missing = len(expected - received)
    figures.unexpected = len(received - expected)
    if figures.missing:
        sample = ", ".join(str(e) for e in sorted(expected - received, key=str)[:5])
        figures.problems.append(f"{figures.missing} events never handled (e.g. {sample})")
    if figures.unexpected:
        figures.problems.append(f"{figures.unexpected} handled events were never written")
    if figures.duplicates:
        figures.problems.append(f"{figures.duplicates} events handled more than once")
    handled_marks = await probe.fetchval(
        "SELECT count(*) FROM bench_consumer.handled_events WHERE consumer = $1", CONSUMER_SERVICE
    )
    if handled_marks != len(expected):
        figures.problems.append(f"handled_events has {handled_marks} rows for {len(expected)} events")


async def run(args: argparse.Namespace) -> Figures:
    base = ServiceSettings()
    prefix = f"bench-{secrets.token_hex(4)}."
    pool = max(10, args.producers + 2)
    psettings = bench_settings(base, service_name=PRODUCER_SERVICE, schema=PRODUCER_SCHEMA, prefix=prefix, pool=pool)
    csettings = bench_settings(base, service_name=CONSUMER_SERVICE, schema=CONSUMER_SCHEMA, prefix=prefix, pool=pool)
    orders_topic = psettings.topic(topics.ORDERS)
    dead_letter_topic = csettings.topic(topics.dead_letter(CONSUMER_SERVICE))
    bench_topics = [orders_topic, dead_letter_topic]
    figures = Figures(events=args.events, producers=args.producers)

    await recreate_database(base)
    pengine = make_engine(psettings)
    cengine = make_engine(csettings)
    producer = make_producer(psettings)
    dlq_producer = make_producer(csettings)
    consumer = make_consumer(csettings, topics.ORDERS)
    probe: asyncpg.Connection | None = None
    tasks: list[asyncio.Task] = []
    topics_created = False
    try:
        await create_schemas(pengine)
        figures.baseline_commits_per_s = await raw_insert_baseline(
            psettings.asyncpg_dsn, args.producers, args.baseline_seconds
        )

        await ensure_topics(psettings, bench_topics)
        topics_created = True
        await producer.start()
        await dlq_producer.start()
        await producer.partitions_for(orders_topic)  # topic metadata loaded before the clock starts
        await consumer.start()

        producer_meta = service_metadata(PRODUCER_SCHEMA)
        consumer_meta = service_metadata(CONSUMER_SCHEMA)
        outbox = producer_meta.tables[f"{PRODUCER_SCHEMA}.outbox"]

        async def on_status_changed(conn: AsyncConnection, event: IntegrationEvent) -> None:
            await conn.execute(INSERT_RECEIVED, {"event_id": event.event_id, "at": event.occurred_at})

        relay = OutboxRelay(
            pengine,
            outbox,
            producer,
            dsn=psettings.asyncpg_dsn,
            topic_prefix=psettings.topic_prefix,
            batch_size=psettings.outbox_batch_size,
        )
        event_consumer = EventConsumer(
            name=CONSUMER_SERVICE,
            engine=cengine,
            handled_events=consumer_meta.tables[f"{CONSUMER_SCHEMA}.handled_events"],
            handlers={"OrderStatusChanged": on_status_changed},
            producer=dlq_producer,
            consumer=consumer,
            dead_letter_topic=dead_letter_topic,
            max_attempts=csettings.consumer_max_attempts,
        )
        tasks = [
            asyncio.create_task(relay.run(), name="outbox-relay"),
            asyncio.create_task(event_consumer.run(), name="event-consumer"),
        ]
        await wait_for_assignment(consumer, csettings.topic_partitions, tasks[1])
        await asyncio.sleep(0.2)  # let the relay's LISTEN connection come up

        probe = await asyncpg.connect(psettings.asyncpg_dsn)
        started_at = utcnow()
        t0 = time.perf_counter()
        written = await write_events(pengine, outbox, args.events, args.producers, prefix.strip("."))
        figures.write_seconds = time.perf_counter() - t0

        count = await wait_until_handled(probe, len(written), tasks, WAIT_TIMEOUT_S)
        if count < len(written):
            figures.problems.append(f"timed out after {WAIT_TIMEOUT_S:.0f} s with {count} of {len(written)}")
        left = await wait_until_outbox_empty(probe, 5.0)
        if left:
            figures.problems.append(f"{left} rows still in the outbox")
        await asyncio.sleep(0.5)  # a late duplicate delivery would show up now
        await collect_figures(probe, figures, written, started_at)

        counts = await message_counts(psettings, bench_topics)
        figures.kafka_messages = counts[orders_topic]
        figures.dead_lettered = counts[dead_letter_topic]
        if figures.dead_lettered:
            figures.problems.append(f"{figures.dead_lettered} messages dead-lettered")
        await stage_latencies(probe, figures, await send_timestamps(psettings, orders_topic, len(written)))
        return figures
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if probe is not None:
            await probe.close()
        await consumer.stop()
        await producer.stop()
        await dlq_producer.stop()
        await pengine.dispose()
        await cengine.dispose()
        await drop_database(base)
        if topics_created:
            with contextlib.suppress(Exception):
                await delete_topics(psettings.kafka_bootstrap_servers, prefix)


# --- output ----------------------------------------------------------------------------------------------------


def report(f: Figures) -> str:
    write_rate = f.events / f.write_seconds if f.write_seconds else 0.0
    e2e_rate = f.events / f.end_to_end_seconds if f.end_to_end_seconds else 0.0
    ratio = e2e_rate / f.baseline_commits_per_s if f.baseline_commits_per_s else 0.0
    write_ratio = write_rate / f.baseline_commits_per_s if f.baseline_commits_per_s else 0.0

    def ms(values: tuple[float, ...] | None) -> str:
        return " / ".join(f"{v:.1f}" for v in values) if values else "n/a"

    rows = [
        ("raw INSERT commits/s (baseline)", f"{f.baseline_commits_per_s:.0f}", ""),
        ("outbox writes/s", f"{write_rate:.0f}", f"({write_ratio:.2f} of baseline, {f.write_seconds:.2f} s)"),
        ("end-to-end events/s", f"{e2e_rate:.0f}", f"({ratio:.2f} of baseline, {f.end_to_end_seconds:.2f} s)"),
        ("delivery latency ms  p50 / p95 / p99 / max", ms(f.latency_ms), ""),
        ("  outbox -> kafka send  (relay stage)", ms(f.relay_ms), ""),
        ("  kafka send -> handled (consumer stage)", ms(f.consume_ms), ""),
        (
            "kafka messages published",
            f"{f.kafka_messages}",
            f"({f.kafka_messages - f.events} redelivered, {f.dead_lettered} dead-lettered)",
        ),
    ]
    width = max(len(label) for label, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    lines = [f"pipeline  outbox -> kafka -> consumer, {f.events} events, {f.producers} writers"]
    lines += [f"  {label:<{width}}  {value:>{value_width}}  {note}".rstrip() for label, value, note in rows]
    lines.append(
        f"  exactly once: {f.handled - f.duplicates} handled, {f.duplicates} duplicates, {f.missing} missing"
        + (f", {f.unexpected} unexpected" if f.unexpected else "")
        + ("" if not f.problems else "  -> FAILED")
    )
    lines += [f"  ! {problem}" for problem in f.problems]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="events to push through (default 5000)")
    parser.add_argument("--producers", type=int, default=8, help="concurrent outbox writers (default 8)")
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        default=BASELINE_SECONDS,
        help="duration of the raw INSERT baseline (default 3)",
    )
    parser.add_argument(
        "--quiet-logs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="service logs at WARNING only (default); --no-quiet-logs shows INFO",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.producers < 1:
        parser.error("--events and --producers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("bench", "WARNING" if args.quiet_logs else "INFO")
    try:
        figures = asyncio.run(run(args))
    except BenchFailed as exc:
        print(f"bench_pipeline: FAILED: {exc}", file=sys.stderr)
        return 1
    print(report(figures))
    return 1 if figures.problems else 0


if __name__ == "__main__":
    sys.exit(main())
