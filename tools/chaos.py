"""The chaos run: orders flow through the whole system while its processes are killed and its servers restarted;
at the end every effect is counted, and any loss or duplicate fails the run.

python -m tools.chaos [--orders 2000] [--seed N] [--merchants 4] [--rate 8] ...

It starts a PostgreSQL and Kafka pair of its own (free ports, a temporary state dir: it restarts them, so it never
touches the project's pair), two instances of each service sharing their consumer groups, one Shopify emulator per
merchant (every webhook delivered twice and shuffled), the Stripe emulator and an SMTP sink. Clients retry their
own calls on connection errors and 5xx with the same Idempotency-Key, as real clients do; webhooks reach the
services through a small retrying balancer, as Shopify's and Stripe's own retries would.
Exit code 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import hashlib
import importlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request, Response

from shared import topics
from tools import demo
from tools.emulators import serve
from tools.emulators.shopify import ShopifyEmulator
from tools.emulators.stripe import create_app as stripe_app
from tools.stack import ROOT, SERVICES, Stack, free_ports

INFRA = ROOT / "deploy" / "local" / "infra.sh"
# What each consumer group reads, for the lag check.
CONSUMED = {name: importlib.import_module(f"services.{name}.consumers").CONSUMES for name in SERVICES}
PRODUCT_ID, VARIANT_ID = 7001, 8001
EMAIL_FROM = "shipping@dropship.local"


@dataclass
class Options:
    orders: int = 2000
    seed: int = 7
    merchants: int = 4
    rate: float = 8.0  # orders created per second, over all merchants
    batch: int = 25  # orders per bulk checkout
    card_fraction: float = 0.1  # of the checkouts, paid by card (the rest from the balance)
    kill_every: float = 6.0  # mean seconds between two SIGKILLs; 0: only one kill of each service
    restart_delay: tuple[float, float] = (0.5, 2.0)
    partitions: int = 8
    timeout: float = 900.0  # for the whole flow; then the checks run on what is there
    quiesce_timeout: float = 120.0
    log_dir: Path | None = None
    keep: bool = False  # keep the database and broker data afterwards


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    orders: int
    elapsed: float = 0.0
    kills: Counter = field(default_factory=Counter)
    crashes: Counter = field(default_factory=Counter)  # processes that exited without being killed
    kafka_restarts: int = 0
    postgres_restarts: int = 0
    retries: Counter = field(default_factory=Counter)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def lines(self) -> list[str]:
        kills = ", ".join(f"{name} {self.kills[name]}" for name in SERVICES)
        out = [
            "=" * 100,
            f"chaos run: {self.orders} orders in {self.elapsed:.1f} s",
            f"  SIGKILLs: {kills} (total {sum(self.kills.values())})",
            f"  restarts: Kafka broker {self.kafka_restarts}, PostgreSQL {self.postgres_restarts}",
            f"  exited by themselves (restarted): {dict(self.crashes) or 'none'}",
            f"  client retries: {dict(self.retries) or 'none'}",
            *(f"  note: {n}" for n in self.notes),
        ]
        out += [f"  {'PASS' if c.ok else 'FAIL'}  {c.name:<38} {c.detail}" for c in self.checks]
        out.append(f"RESULT: {'PASS' if self.ok else 'FAIL'}")
        return out


# --- infrastructure of our own ---------------------------------------------------------------------------------


class Infra:
    """A PostgreSQL and Kafka pair on free ports in a temporary state dir, restartable one server at a time."""

    def __init__(self) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="dropship-chaos-"))
        self.state.chmod(0o755)  # the `postgres` OS user must reach the data dir when we run as root
        pg, kafka, controller = free_ports(3)
        self.env = {
            **os.environ,
            "DROPSHIP_STATE_DIR": str(self.state),
            "DROPSHIP_PG_DATA": str(self.state / "pg"),  # never the project's cluster, whatever the permissions
            "DROPSHIP_PG_PORT": str(pg),
            "DROPSHIP_KAFKA_PORT": str(kafka),
            "DROPSHIP_KAFKA_CONTROLLER_PORT": str(controller),
        }
        self.database_url = f"postgresql+asyncpg://dropship:dropship@127.0.0.1:{pg}/dropship"
        self.dsn = f"postgresql://dropship:dropship@127.0.0.1:{pg}/dropship"
        self.kafka = f"127.0.0.1:{kafka}"

    def _infra(self, command: str) -> None:
        done = subprocess.run([str(INFRA), command], env=self.env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"infra.sh {command} failed:\n{done.stderr[-3000:]}")

    def start(self) -> None:
        self._infra("start")

    def stop(self, keep: bool = False) -> None:
        with contextlib.suppress(RuntimeError):
            self._infra("stop")
        if not keep:
            shutil.rmtree(self.state, ignore_errors=True)

    def _stop_pid(self, pid: int, sig: signal.Signals, timeout: float = 60) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise TimeoutError(f"pid {pid} did not stop")

    def restart_kafka(self, down_seconds: float) -> None:
        """A clean broker shutdown (SIGTERM), some time down, then infra.sh start brings it back."""
        self._stop_pid(int((self.state / "kafka.pid").read_text()), signal.SIGTERM)
        time.sleep(down_seconds)
        self.start()

    def restart_postgres(self, down_seconds: float) -> None:
        """A fast shutdown (SIGINT to the postmaster: every session is cut), some time down, then back."""
        self._stop_pid(int((self.state / "pg" / "postmaster.pid").read_text().split()[0]), signal.SIGINT)
        time.sleep(down_seconds)
        self.start()


# --- the parts around the services -----------------------------------------------------------------------------


class Inbox:
    """The SMTP sink: every message the tracking service hands over."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def balancer(upstreams: dict[str, list[str]], windows: dict[str, float]) -> FastAPI:
    """`POST /<service>/<path>` goes to a live instance of the service, round robin; connection errors and 5xx
    are retried for the service's window, then answered 503 (so that the sender's own retry takes over)."""
    app = FastAPI()
    turn = itertools.count()
    http = httpx.AsyncClient(timeout=5)

    @app.post("/{service}/{path:path}")
    async def forward(service: str, path: str, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
        deadline = time.monotonic() + windows[service]
        while True:
            url = upstreams[service][next(turn) % len(upstreams[service])]
            with contextlib.suppress(httpx.TransportError):
                answer = await http.post(f"{url}/{path}", content=body, headers=headers)
                if answer.status_code < 500:
                    return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))
            if time.monotonic() > deadline:
                return Response(status_code=503)
            await asyncio.sleep(0.2)

    return app


class Client:
    """The merchants' and ops' client: round robin over the instances, and on a connection error or a 5xx the
    same request again (same Idempotency-Key) until it gets an answer."""

    def __init__(self, urls: dict[str, list[str]], retries: Counter, give_up_after: float = 180) -> None:
        self.urls, self.retries, self.give_up_after = urls, retries, give_up_after
        self.http = httpx.AsyncClient(timeout=20)
        self.turn = itertools.count()
        self.tokens: dict[tuple[str, str], dict[str, str]] = {}

    async def call(
        self, service: str, method: str, path: str, *, merchant: str = "ops", role: str = "merchant", **kw
    ) -> httpx.Response:
        if (role, merchant) not in self.tokens:
            self.tokens[role, merchant] = demo.auth(role, merchant)
        headers = {**self.tokens[role, merchant], **kw.pop("headers", {})}
        deadline, delay = time.monotonic() + self.give_up_after, 0.1
        while True:
            url = self.urls[service][next(self.turn) % len(self.urls[service])]
            try:
                response = await self.http.request(method, url + path, headers=headers, **kw)
                if response.status_code < 500:
                    return response
                self.retries[f"{service} {response.status_code}"] += 1
            except httpx.TransportError as exc:
                self.retries[f"{service} {type(exc).__name__}"] += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method} {service}{path}: no answer for {self.give_up_after}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def ok(self, service: str, method: str, path: str, **kw) -> dict:
        response = await self.call(service, method, path, **kw)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {service}{path}: {response.status_code} {response.text}")
        return response.json()


# --- the run ---------------------------------------------------------------------------------------------------


@dataclass
class Merchant:
    id: str
    shop: ShopifyEmulator
    url: str = ""
    store_id: str = ""
    submitted: set[str] = field(default_factory=set)  # orders in a checkout we paid (or are paying)
    checkouts: int = 0


class ChaosRun:
    def __init__(self, options: Options, infra: Infra) -> None:
        self.o, self.infra = options, infra
        self.rng = random.Random(options.seed)
        self.run_id = uuid.uuid4().hex[:8]
        self.report = Report(options.orders)
        self.prefix = f"chaos{self.run_id}."
        self.log_dir = options.log_dir or ROOT / ".local" / "chaos" / self.run_id
        self.inbox = Inbox()
        self.created = 0
        self.flow_done = asyncio.Event()
        self.stacks: list[Stack] = []
        self.down: set[tuple[int, str]] = set()
        self.restarting: set[asyncio.Task] = set()
        self.server_restarting = False

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {message}", flush=True)

    # --- set-up ----------------------------------------------------------------------------------------------

    def service_env(self, smtp_port: int, stripe_url: str) -> dict[str, str]:
        return {
            "DATABASE_URL": self.infra.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka,
            "TOPIC_PREFIX": self.prefix,
            "TOPIC_PARTITIONS": str(self.o.partitions),
            "ENVIRONMENT": "test",
            "LOG_LEVEL": os.environ.get("CHAOS_SERVICE_LOG_LEVEL", "WARNING"),
            "DB_POOL_SIZE": "5",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "EMAIL_FROM": EMAIL_FROM,
            "EMAIL_POLL_SECONDS": "0.2",
            "EMAIL_RETRY_BASE_SECONDS": "1",
            "STRIPE_API_BASE": stripe_url,
            "WRITEBACK_INTERVAL_SECONDS": "0.3",
            "WRITEBACK_BACKOFF_SECONDS": "1",
        }

    async def setup_merchants(self, client: Client, merchants: list[Merchant]) -> None:
        method = await client.ok(
            "checkout",
            "POST",
            "/v1/shipping-methods",
            role="ops",
            json=demo.shipping_method(f"YunExpress Chaos {self.run_id}"),
        )
        variant = await client.ok(
            "orders",
            "POST",
            "/v1/catalog/variants",
            role="ops",
            json={"sku": f"CHAOS-{self.run_id}", "title": "Chaos mug", "unit_cost": "4.20", "weight_grams": 300},
        )
        for m in merchants:
            store = await client.ok(
                "sync",
                "POST",
                "/v1/stores",
                merchant=m.id,
                headers={"Idempotency-Key": f"store-{m.id}"},
                json={
                    "platform": "shopify",
                    "shop_domain": m.shop.shop,
                    "name": f"Store of {m.id}",
                    "access_token": m.shop.access_token,
                    "webhook_secret": m.shop.webhook_secret,
                    "api_url": m.url,
                },
            )
            m.store_id = store["id"]
            await client.ok(
                "orders",
                "POST",
                "/v1/product-connections",
                merchant=m.id,
                json={
                    "store_id": m.store_id,
                    "external_product_id": str(PRODUCT_ID),
                    "external_variant_id": str(VARIANT_ID),
                    "catalog_variant_id": variant["id"],
                },
            )
            await client.ok(
                "checkout", "PUT", "/v1/shipping-settings", merchant=m.id, json={"default_method_id": method["id"]}
            )
            await client.ok(
                "checkout",
                "POST",
                "/v1/balance/top-ups",
                role="ops",
                headers={"Idempotency-Key": f"top-up-{m.id}"},
                json={"merchant_id": m.id, "amount": {"amount": "1000000.00", "currency": "USD"}, "reference": "chaos"},
            )

    # --- the load ------------------------------------------------------------------------------------------

    async def feed(self, m: Merchant, count: int, hook_url: str) -> None:
        """Paid orders appear in the store at the run's pace; their webhooks go out twice each, shuffled. A wave
        some of whose deliveries failed goes out again (Shopify retries too): more duplicates, nothing missing."""
        per_second = self.o.rate / self.o.merchants
        started, made = time.monotonic(), 0
        while made < count:
            due = min(count, max(made + 1, int((time.monotonic() - started) * per_second)))
            for _ in range(due - made):
                m.shop.create_order(lines=[(PRODUCT_ID, VARIANT_ID, "STORE-MUG", self.rng.randint(1, 3), "19.90")])
            self.created += due - made
            made = due
            wave = list(m.shop.outgoing)
            while True:
                try:
                    statuses = await m.shop.deliver(hook_url, duplicates=2, shuffle=True, seed=self.rng.random())
                except httpx.HTTPError as exc:
                    statuses = [repr(exc)]
                bad = [s for s in statuses if s != 200]
                if not bad:
                    break
                self.report.retries[f"webhook wave {bad[0]}"] += 1
                m.shop.outgoing = wave + m.shop.outgoing
                await asyncio.sleep(0.5)
            await asyncio.sleep(max(0.0, started + made / per_second - time.monotonic()))

    async def pay(self, client: Client, m: Merchant) -> None:
        """Bulk checkouts of what reached To Order, paid from the balance (some by card)."""
        while not self.flow_done.is_set():
            listed = await client.call(
                "orders",
                "GET",
                "/v1/orders",
                merchant=m.id,
                params={"status": "to_order", "sort": "oldest", "limit": 250},
            )
            fresh = [o["id"] for o in listed.json()["items"] if o["id"] not in m.submitted] if listed.is_success else []
            for start in range(0, len(fresh), self.o.batch):
                batch = fresh[start : start + self.o.batch]
                m.checkouts += 1
                checkout = await client.call(
                    "checkout",
                    "POST",
                    "/v1/checkouts",
                    merchant=m.id,
                    headers={"Idempotency-Key": f"checkout-{m.id}-{m.checkouts}"},
                    json={"order_ids": batch},
                )
                if checkout.status_code != 201:  # e.g. checkout has not heard of an order yet: next round
                    self.report.retries[f"checkout refused {checkout.status_code}"] += 1
                    continue
                checkout_id = checkout.json()["id"]
                by_card = self.rng.random() < self.o.card_fraction
                body = {"method": "card", "payment_method": "pm_card_visa"} if by_card else {"method": "balance"}
                paid = await client.call(
                    "checkout",
                    "POST",
                    f"/v1/checkouts/{checkout_id}/pay",
                    merchant=m.id,
                    headers={"Idempotency-Key": f"pay-{checkout_id}"},
                    json=body,
                )
                if paid.status_code == 200:
                    m.submitted.update(batch)
                else:
                    self.report.retries[f"pay refused {paid.status_code}"] += 1
                    self.log(f"pay refused: {paid.status_code} {paid.text[:300]}")
            await asyncio.sleep(1.0)

    async def warehouse(self, client: Client) -> None:
        """Ops move every job through every step with the bulk endpoint; a retried bulk call finds the jobs it
        moved already a step further (409), and moves the rest."""
        steps = (("purchasing", "purchase"), ("quality_check", "quality-check"), ("packing", "pack"))
        while not self.flow_done.is_set():
            for step, action in (*steps, ("labelling", None)):
                listed = await client.call(
                    "tracking", "GET", "/v1/fulfillments", role="ops", params={"step": step, "limit": 250}
                )
                jobs = listed.json()["items"] if listed.is_success else []
                if not jobs:
                    continue
                if action is not None:
                    items: dict[str, list[dict]] = {action: [{"fulfillment_id": j["id"], "passed": True} for j in jobs]}
                else:
                    items = {
                        "label": [
                            {"fulfillment_id": j["id"], "carrier": "YunExpress", "tracking_number": tracking_number(j)}
                            for j in jobs
                            if not j["tracking_number"]
                        ],
                        "ship": [{"fulfillment_id": j["id"]} for j in jobs if j["tracking_number"]],
                    }
                for name, batch in items.items():
                    if batch:
                        result = await client.call(
                            "tracking", "POST", f"/v1/fulfillments/bulk/{name}", role="ops", json={"items": batch}
                        )
                        for item in result.json().get("items", []) if result.is_success else []:
                            if item["status"] not in (200, 409):
                                self.log(f"bulk {name}: {item}")
            await asyncio.sleep(0.5)

    # --- the chaos -----------------------------------------------------------------------------------------

    def instances(self) -> list[tuple[int, str]]:
        return [(i, name) for i in range(len(self.stacks)) for name in SERVICES]

    async def kill(self, instance: tuple[int, str]) -> None:
        index, name = instance
        process = self.stacks[index].processes[name]
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait)
        self.down.add(instance)
        self.report.kills[name] += 1
        self.log(f"SIGKILL {name}#{index + 1}")

        async def restart_later() -> None:
            await asyncio.sleep(self.rng.uniform(*self.o.restart_delay))
            self.stacks[index].start(name)
            self.down.discard(instance)

        self.background(restart_later())

    async def chaos(self) -> None:
        """One instance of every service is killed first, in random order, then random ones, every few seconds;
        the broker restarts after a third of the feed, PostgreSQL after two thirds."""
        feed_seconds = self.o.orders / self.o.rate
        must = [(self.rng.randrange(len(self.stacks)), name) for name in self.rng.sample(list(SERVICES), len(SERVICES))]
        start = time.monotonic()
        infra_events = [(feed_seconds / 3, "kafka"), (2 * feed_seconds / 3, "postgres")]
        must_gap = max(1.0, feed_seconds / (len(must) + 3))
        if self.o.kill_every > 0:
            must_gap = min(must_gap, self.o.kill_every)
        next_kill = start + self.rng.uniform(0.5, 1.5) * must_gap
        while not (self.flow_done.is_set() and not must and not infra_events):
            now = time.monotonic()
            if infra_events and now - start >= infra_events[0][0] and not self.server_restarting:
                self.server_restarting = True
                self.background(self.restart_server(infra_events.pop(0)[1]))
            elif now >= next_kill and (must or (self.o.kill_every > 0 and not self.flow_done.is_set())):
                up = [i for i in self.instances() if i not in self.down]
                victim = next((i for i in must if i in up), None) if must else self.rng.choice(up)
                if victim is not None:
                    if victim in must:
                        must.remove(victim)
                    await self.kill(victim)
                next_kill = time.monotonic() + self.rng.uniform(0.5, 1.5) * (must_gap if must else self.o.kill_every)
            self.supervise()
            await asyncio.sleep(0.1)
        while self.restarting:
            await asyncio.gather(*self.restarting)

    async def restart_server(self, server: str) -> None:
        down = self.rng.uniform(2.0, 4.0)
        self.log(f"restarting {server} ({down:.1f} s down)")
        began = time.monotonic()
        if server == "kafka":
            await asyncio.to_thread(self.infra.restart_kafka, down)
            self.report.kafka_restarts += 1
        else:
            await asyncio.to_thread(self.infra.restart_postgres, down)
            self.report.postgres_restarts += 1
        self.log(f"{server} is back after {time.monotonic() - began:.1f} s")
        self.server_restarting = False

    def background(self, work) -> None:
        task = asyncio.create_task(work)
        self.restarting.add(task)
        task.add_done_callback(self.restarting.discard)

    def supervise(self) -> None:
        """What a process supervisor does: a process that exited by itself is started again, and reported."""
        for index, name in self.instances():
            process = self.stacks[index].processes[name]
            if (index, name) not in self.down and process.poll() is not None:
                self.report.crashes[name] += 1
                self.log(f"{name}#{index + 1} exited by itself with {process.returncode}: restarted")
                self.stacks[index].start(name)

    # --- watching ------------------------------------------------------------------------------------------

    async def fetch(self, sql: str) -> list[asyncpg.Record]:
        """A query on a connection of its own: PostgreSQL may be restarting, so failures are retried a while."""
        for _ in range(300):
            try:
                conn = await asyncpg.connect(self.infra.dsn, timeout=5)
                try:
                    return await conn.fetch(sql)
                finally:
                    await conn.close()
            # InternalClientError: the server went away in the middle of the exchange (asyncpg's state machine)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
                await asyncio.sleep(0.2)
        raise TimeoutError("the database did not come back")

    async def count(self, sql: str) -> int:
        return (await self.fetch(sql))[0][0]

    async def watch(self) -> None:
        deadline, last = time.monotonic() + self.o.timeout, 0.0
        while True:
            shipped = await self.count("SELECT count(*) FROM orders.orders WHERE status = 'shipped'")
            if shipped >= self.o.orders:
                break
            if time.monotonic() > deadline:
                self.report.notes.append(f"the flow did not finish in {self.o.timeout:.0f} s: {shipped} shipped")
                break
            if time.monotonic() - last > 10:
                last = time.monotonic()
                by_status = dict(await self.fetch("SELECT status, count(*) FROM orders.orders GROUP BY 1"))
                kills = sum(self.report.kills.values())
                self.log(f"created {self.created}, orders by status {by_status}, kills {kills}")
            await asyncio.sleep(0.5)
        self.flow_done.set()

    # --- the checks ----------------------------------------------------------------------------------------

    async def lag(self) -> dict[str, int]:
        """Messages each consumer group has not committed, by group."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.infra.kafka)
        reader = AIOKafkaConsumer(bootstrap_servers=self.infra.kafka)
        await admin.start()
        await reader.start()
        try:
            lag = {}
            for service, consumed in CONSUMED.items():
                committed = await admin.list_consumer_group_offsets(self.prefix + service)
                tps = await self._partitions(reader, [self.prefix + t for t in consumed])
                ends = await reader.end_offsets(tps)
                lag[service] = sum(
                    ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                    for tp in tps
                )
            return lag
        finally:
            await reader.stop()
            await admin.close()

    @staticmethod
    async def _partitions(reader: AIOKafkaConsumer, names: list[str]) -> list[TopicPartition]:
        await reader._client.force_metadata_update()
        return [TopicPartition(t, p) for t in names for p in sorted(reader.partitions_for_topic(t) or ())]

    async def dead_letters(self) -> list[str]:
        reader = AIOKafkaConsumer(bootstrap_servers=self.infra.kafka, enable_auto_commit=False)
        await reader.start()
        try:
            tps = await self._partitions(reader, [self.prefix + topics.dead_letter(s) for s in SERVICES])
            ends = await reader.end_offsets(tps)
            wanted = {tp: end for tp, end in ends.items() if end > 0}
            if not wanted:
                return []
            reader.assign(list(wanted))
            await reader.seek_to_beginning(*wanted)
            entries: list[str] = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and [tp for tp, end in wanted.items() if await reader.position(tp) < end]:
                for messages in (await reader.getmany(timeout_ms=500)).values():
                    for msg in messages:
                        headers = {k: v.decode(errors="replace") for k, v in msg.headers or ()}
                        entries.append(
                            f"{msg.topic}@{msg.offset} key={msg.key!r} from {headers.get('original_topic')}"
                            f"@{headers.get('original_offset')}: {headers.get('error')}"
                        )
            return entries
        finally:
            await reader.stop()

    async def pending_work(self) -> dict[str, int]:
        outbox = {s: await self.count(f"SELECT count(*) FROM {s}.outbox") for s in SERVICES}  # noqa: S608 - our names
        return {
            **{f"outbox {s}": n for s, n in outbox.items()},
            "webhooks waiting": await self.count(
                "SELECT count(*) FROM sync.webhook_deliveries WHERE applied_at IS NULL"
            ),
            "write-backs pending": await self.count("SELECT count(*) FROM sync.tracking_pushes WHERE status='pending'"),
            "emails pending": await self.count("SELECT count(*) FROM tracking.emails WHERE status = 'pending'"),
        }

    async def quiesce(self) -> None:
        deadline = time.monotonic() + self.o.quiesce_timeout
        while time.monotonic() < deadline:
            busy = {k: v for k, v in (await self.pending_work()).items() if v}
            try:
                busy |= {f"lag {k}": v for k, v in (await self.lag()).items() if v}
            except Exception as exc:  # the broker is still finding its feet
                busy["kafka"] = repr(exc)
            if not busy:
                return
            await asyncio.sleep(1.0)
        self.report.notes.append(f"not quiet after {self.o.quiesce_timeout:.0f} s: {busy}")

    async def verify(self, merchants: list[Merchant]) -> None:
        r = self.report
        expected = {(m.store_id, str(o)) for m in merchants for o in m.shop.orders}
        rows = await self.fetch("SELECT id, store_id, external_order_id, status FROM orders.orders")
        held = Counter((row["store_id"], row["external_order_id"]) for row in rows)
        doubled = [k for k, n in held.items() if n > 1]
        missing = expected - set(held)
        r.check(
            "every order exactly once",
            not doubled and not missing and len(rows) == len(expected),
            f"{len(expected)} in the stores, {len(rows)} in orders, {len(missing)} missing, {len(doubled)} doubled",
        )
        states = Counter(row["status"] for row in rows)
        r.check("every order Shipped", states == Counter({"shipped": len(expected)}), f"{dict(states)}")

        charges = await self.fetch(
            "SELECT co.order_id, count(*) AS n FROM checkout.checkout_orders co JOIN checkout.payments p"
            " ON p.checkout_id = co.checkout_id AND p.status = 'succeeded' GROUP BY co.order_id"
        )
        per_order = Counter({c["order_id"]: c["n"] for c in charges})
        order_ids = {row["id"] for row in rows}
        r.check(
            "one charge per paid order",
            set(per_order) == order_ids and all(n == 1 for n in per_order.values()),
            f"{len(per_order)} orders charged, {sum(1 for n in per_order.values() if n > 1)} more than once,"
            f" {len(order_ids - set(per_order))} never",
        )
        methods = dict(await self.fetch("SELECT method, count(*) FROM checkout.payments GROUP BY 1"))
        balance_payments = await self.count("SELECT count(*) FROM checkout.payments WHERE method = 'balance'")
        charge_txns = await self.count(
            "SELECT count(DISTINCT transaction_id) FROM checkout.ledger_entries WHERE kind = 'charge'"
        )
        charge_refs = await self.count(
            "SELECT count(DISTINCT reference) FROM checkout.ledger_entries WHERE kind = 'charge'"
        )
        r.check(
            "one ledger charge per balance payment",
            balance_payments == charge_txns == charge_refs,
            f"payments by method {methods}, {charge_txns} charge transactions",
        )
        unbalanced = await self.fetch(
            "SELECT transaction_id FROM checkout.ledger_entries GROUP BY 1 HAVING sum(amount) <> 0"
        )
        wallets = await self.fetch(
            "SELECT w.merchant_id, w.balance, coalesce(sum(e.amount), 0) AS posted FROM checkout.wallets w"
            " LEFT JOIN checkout.ledger_entries e ON e.account = 'wallet:' || w.merchant_id"
            " AND e.currency = w.currency GROUP BY w.merchant_id, w.currency, w.balance"
        )
        off = [w["merchant_id"] for w in wallets if w["balance"] != w["posted"]]
        r.check(
            "ledger balances",
            not unbalanced and not off,
            f"{len(wallets)} wallets, {len(off)} off their postings; {len(unbalanced)} transactions not summing to 0",
        )

        shipments = await self.fetch("SELECT id, order_id, tracking_number FROM tracking.shipments")
        per_order_shipments = Counter(s["order_id"] for s in shipments)
        r.check(
            "one shipment per order",
            set(per_order_shipments) == order_ids and all(n == 1 for n in per_order_shipments.values()),
            f"{len(shipments)} shipments for {len(order_ids)} orders",
        )
        order_of = {(row["store_id"], row["external_order_id"]): row["id"] for row in rows}
        number_of = {s["order_id"]: s["tracking_number"] for s in shipments}
        fulfilled = Counter()
        wrong = 0
        for m in merchants:
            for external, order in m.shop.orders.items():
                fulfilled[len(order["fulfillments"])] += 1
                numbers = [f["tracking_number"] for f in order["fulfillments"]]
                wrong += bool(numbers) and numbers != [number_of.get(order_of.get((m.store_id, str(external))))]
        r.check(
            "one store fulfillment per shipment",
            fulfilled == Counter({1: len(expected)}) and not wrong,
            f"store orders by number of fulfillments {dict(sorted(fulfilled.items()))}, {wrong} with a wrong number",
        )
        # A crash between the SMTP server's 250 and the sender's commit sends the email again, with the same
        # Message-ID (tracking/handlers.py: at-least-once; a mailbox that dedupes by Message-ID shows one). So one
        # email means one distinct message per shipment; same-ID resends are counted and printed, not failed.
        by_id = Counter(msg["Message-ID"] for msg in self.inbox.messages)
        wanted = {f"<shipment-{s['id']}@{EMAIL_FROM.split('@')[1]}>" for s in shipments}
        resent = sum(n - 1 for n in by_id.values())
        r.check(
            "one email per shipment",
            set(by_id) == wanted,
            f"{len(by_id)} distinct emails for {len(shipments)} shipments, {len(wanted - set(by_id))} never sent,"
            f" {len(set(by_id) - wanted)} unknown; {resent} resent with the same Message-ID after a kill",
        )

        work = await self.pending_work()
        outbox = {k.split()[1]: v for k, v in work.items() if k.startswith("outbox")}
        r.check("outbox empty", not any(outbox.values()), f"{outbox}")
        deliveries: Counter[str] = Counter()
        for row in await self.fetch("SELECT outcome, count(*) AS n FROM sync.webhook_deliveries GROUP BY outcome"):
            deliveries[row["outcome"].partition(":")[0] if row["outcome"] else "waiting"] += row["n"]
        r.check(
            "every webhook delivery applied",
            not deliveries["waiting"] and not deliveries["failed"],
            f"deliveries by outcome {dict(sorted(deliveries.items()))}",
        )
        lag = await self.lag()
        r.check("no consumer lag", not any(lag.values()), f"uncommitted messages by group {lag}")
        letters = await self.dead_letters()
        for entry in letters:
            print(f"  dead letter: {entry}")
        r.check("dead-letter topics empty", not letters, f"{len(letters)} entries")
        back = []
        for stack in self.stacks:
            try:
                await asyncio.to_thread(stack.wait_ready, 30)
                back.append(len(stack.processes))
            except (RuntimeError, TimeoutError) as exc:
                r.notes.append(str(exc))
        r.check(
            "every instance came back",
            sum(back) == len(self.instances()),
            f"{sum(back)} of {len(self.instances())} ready",
        )

    # --- the whole run -------------------------------------------------------------------------------------

    async def run(self) -> Report:
        self.t0 = time.monotonic()
        o = self.o
        async with contextlib.AsyncExitStack() as stack:
            smtp = Controller(self.inbox, hostname="127.0.0.1", port=free_ports(1)[0])
            smtp.start()
            stack.callback(smtp.stop)
            merchants = []
            for i in range(o.merchants):
                shop = ShopifyEmulator(
                    f"chaos-{self.run_id}-{i}.myshopify.com",
                    webhook_secret=f"chaos-secret-{self.run_id}-{i}",
                    bucket_size=100_000,  # the write-back is not what this run measures
                    drain_per_second=100_000,
                )
                merchant = Merchant(f"chaos-{self.run_id}-m{i}", shop)
                merchant.url = await stack.enter_async_context(serve(shop.app))
                merchants.append(merchant)
            ports = free_ports(2 * len(SERVICES) + 1)
            hooks_port = ports.pop()
            hooks = f"http://127.0.0.1:{hooks_port}"
            stripe_url = await stack.enter_async_context(serve(stripe_app(f"{hooks}/checkout/webhooks/stripe")))
            env = self.service_env(smtp.port, stripe_url)
            self.stacks = [
                Stack(
                    env, ports=dict(zip(SERVICES, ports[i::2], strict=True)), log_dir=self.log_dir / f"instance{i + 1}"
                )
                for i in range(2)
            ]
            stack.callback(lambda: [s.stop() for s in self.stacks])
            urls = {name: [s.url(name) for s in self.stacks] for name in SERVICES}
            await stack.enter_async_context(serve(balancer(urls, {"sync": 8.0, "checkout": 4.0}), port=hooks_port))
            self.log(f"migrating; service logs in {self.log_dir}")
            await asyncio.to_thread(self.stacks[0].migrate)
            for s in self.stacks:
                for name in SERVICES:
                    s.start(name)
            for s in self.stacks:
                await asyncio.to_thread(s.wait_ready, 90)
            client = Client(urls, self.report.retries)
            await self.setup_merchants(client, merchants)
            self.log(f"{len(self.stacks) * len(SERVICES)} service processes up; {o.orders} orders at {o.rate}/s")

            flow_start = time.monotonic()
            counts = [o.orders // o.merchants + (i < o.orders % o.merchants) for i in range(o.merchants)]
            tasks = [
                *(
                    asyncio.create_task(self.feed(m, n, f"{hooks}/sync/webhooks/shopify"))
                    for m, n in zip(merchants, counts, strict=True)
                ),
                *(asyncio.create_task(self.pay(client, m)) for m in merchants),
                asyncio.create_task(self.warehouse(client)),
                asyncio.create_task(self.chaos()),
            ]
            watcher = asyncio.create_task(self.watch())
            done, _ = await asyncio.wait([watcher, *tasks], return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    self.flow_done.set()
                    for t in tasks:
                        t.cancel()
                    raise task.exception()
            await asyncio.gather(*tasks)
            self.log(f"flow done in {time.monotonic() - flow_start:.1f} s; waiting for quiescence")
            await self.quiesce()
            self.report.elapsed = time.monotonic() - flow_start
            await self.verify(merchants)
        return self.report


def tracking_number(job: dict) -> str:
    """One per job, the same on every retry of its label."""
    return "CH" + hashlib.sha256(job["id"].encode()).hexdigest()[:16].upper()


async def run(options: Options) -> Report:
    infra = Infra()
    await asyncio.to_thread(infra.start)
    try:
        return await ChaosRun(options, infra).run()
    finally:
        await asyncio.to_thread(infra.stop, options.keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__.split("\n\n")[0])
    defaults = Options()
    parser.add_argument("--orders", type=int, default=defaults.orders)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--merchants", type=int, default=defaults.merchants)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="orders created per second")
    parser.add_argument("--batch", type=int, default=defaults.batch, help="orders per bulk checkout")
    parser.add_argument("--card-fraction", type=float, default=defaults.card_fraction)
    parser.add_argument(
        "--kill-every",
        type=float,
        default=defaults.kill_every,
        help="mean seconds between kills (0: one kill of each service)",
    )
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds for the flow")
    parser.add_argument("--keep", action="store_true", help="keep the database and broker data")
    args = parser.parse_args(argv)
    options = Options(
        orders=args.orders,
        seed=args.seed,
        merchants=args.merchants,
        rate=args.rate,
        batch=args.batch,
        card_fraction=args.card_fraction,
        kill_every=args.kill_every,
        timeout=args.timeout,
        keep=args.keep,
    )
    report = asyncio.run(run(options))
    print("\n".join(report.lines()), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
