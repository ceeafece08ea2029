"""The sync service as a separate process (DEBUG logging): store secrets never appear in its answers, its log
file or its database rows, through connect, update, webhooks, a sync job and a revoked token."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest

from tests.kafka import new_topic_prefix
from tools import demo
from tools.emulators import serve
from tools.emulators.shopify import ShopifyEmulator
from tools.stack import Stack, free_ports

pytestmark = pytest.mark.e2e


async def test_secrets_stay_out_of_answers_logs_and_rows(migrated, tmp_path):
    token, new_token = f"shpat_{uuid.uuid4().hex}", f"shpat_{uuid.uuid4().hex}"
    webhook_secret, woo_secret = f"whsec-{uuid.uuid4().hex}", f"cs_{uuid.uuid4().hex}"
    secrets = (token, new_token, webhook_secret, woo_secret)
    shop = ShopifyEmulator(f"s{uuid.uuid4().hex[:8]}.myshopify.com", access_token=token, webhook_secret=webhook_secret)
    (port,) = free_ports(1)
    env = {**migrated, "TOPIC_PREFIX": new_topic_prefix("syncproc"), "LOG_LEVEL": "DEBUG"}
    stack = Stack(env, ports={"sync": port}, log_dir=tmp_path)
    stack.start("sync")
    answers: list[str] = []
    try:
        await asyncio.to_thread(stack.wait_ready, 60)
        async with serve(shop.app) as shop_url, httpx.AsyncClient(base_url=stack.url("sync"), timeout=10) as http:
            headers = demo.auth("merchant", f"m-{uuid.uuid4().hex[:8]}")

            async def call(method: str, path: str, **kw) -> httpx.Response:
                response = await http.request(method, path, headers={**headers, **kw.pop("headers", {})}, **kw)
                answers.append(response.text)
                return response

            store = (
                await call(
                    "POST",
                    "/v1/stores",
                    json={
                        "platform": "shopify",
                        "shop_domain": shop.shop,
                        "name": "Secret Store",
                        "access_token": token,
                        "webhook_secret": webhook_secret,
                        "api_url": shop_url,
                    },
                )
            ).json()
            woo = await call(
                "POST",
                "/v1/stores",
                json={
                    "platform": "woocommerce",
                    "shop_domain": f"w{uuid.uuid4().hex[:8]}.example.com",
                    "name": "Woo",
                    "consumer_key": "ck_visible_key",
                    "consumer_secret": woo_secret,
                    "webhook_secret": webhook_secret,
                },
            )
            assert woo.status_code == 201
            await call("GET", f"/v1/stores/{store['id']}")
            await call("GET", "/v1/stores")
            await call("PATCH", f"/v1/stores/{store['id']}", json={"access_token": new_token})
            shop.access_token = new_token
            shop.create_order()
            assert await shop.deliver(f"{stack.url('sync')}/webhooks/shopify") == [200, 200]
            body = b'{"id": 1}'
            forged = {**shop.signed_headers("orders/create", body), "X-Shopify-Hmac-Sha256": "x"}
            assert (await call("POST", "/webhooks/shopify", content=body, headers=forged)).status_code == 401
            unusable = json.dumps({"id": 2, "updated_at": "2026-01-01T00:00:00Z"}).encode()
            refused = await call(
                "POST", "/webhooks/shopify", content=unusable, headers=shop.signed_headers("orders/create", unusable)
            )
            assert refused.status_code == 422

            async def finished(job_id: str) -> dict:
                for _ in range(600):
                    job = (await call("GET", f"/v1/sync-jobs/{job_id}")).json()
                    if job["status"] != "running":
                        return job
                    await asyncio.sleep(0.05)
                raise AssertionError(f"sync job {job_id} did not finish")

            job = (await call("POST", f"/v1/stores/{store['id']}/sync")).json()
            assert (await finished(job["id"]))["status"] == "succeeded"
            shop.revoke_token()
            job = (await call("POST", f"/v1/stores/{store['id']}/sync")).json()
            assert (await finished(job["id"]))["status"] == "failed"
            assert (await call("GET", f"/v1/stores/{store['id']}")).json()["status"] == "disconnected"
    finally:
        stack.stop()
    log = (tmp_path / "sync.log").read_text()
    assert "store.disconnected" in log and "sync_job.finished" in log  # the log did record what happened
    conn = await asyncpg.connect(migrated["DATABASE_URL"].replace("+asyncpg", ""))
    try:
        rows = [dict(r) for r in await conn.fetch("SELECT * FROM sync.stores WHERE name IN ('Secret Store', 'Woo')")]
    finally:
        await conn.close()
    assert len(rows) == 2
    for secret in secrets:
        assert all(secret not in answer for answer in answers), secret
        assert secret not in log, secret
        assert secret not in repr(rows), secret
