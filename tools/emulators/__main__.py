"""The outside world of the `make run` demo in one process: the demo store's Shopify, Stripe, and an SMTP server
that keeps the customers' emails (printed to its log and listed at /_emulator/emails on the Shopify port).

    python -m tools.emulators --shopify-port 8101 --stripe-port 8102 --smtp-port 8125 \\
        --stripe-webhook-url http://127.0.0.1:8003/webhooks/stripe
"""

from __future__ import annotations

import argparse
import asyncio
import email
import time
from email import policy

from aiosmtpd.smtp import SMTP

from tools.emulators import serve
from tools.emulators import stripe as stripe_emulator
from tools.emulators.shopify import ShopifyEmulator


class MailSink:
    """aiosmtpd handler: accepts every message and keeps it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        kept = {
            "to": ", ".join(envelope.rcpt_tos),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
        }
        self.messages.append(kept)
        print(f"email to {kept['to']}: {kept['subject']}", flush=True)
        return "250 Message accepted for delivery"


async def run(args: argparse.Namespace) -> None:
    from tools import demo

    shop = ShopifyEmulator(
        demo.SHOP,
        access_token=demo.ACCESS_TOKEN,
        webhook_secret=demo.WEBHOOK_SECRET,
        drain_per_second=2.0,
        # The demo's database outlives the emulator: a new run must not hand out the ids of the last one's orders.
        first_id=int(time.time() * 1000),
    )
    sink = MailSink()
    shop.app.get("/_emulator/emails")(lambda: {"emails": sink.messages})
    smtp = await asyncio.get_running_loop().create_server(lambda: SMTP(sink), "127.0.0.1", args.smtp_port)
    stripe = stripe_emulator.create_app(args.stripe_webhook_url, args.stripe_webhook_secret)
    async with serve(shop.app, args.shopify_port), serve(stripe, args.stripe_port), smtp:
        print(
            f"emulators: shopify :{args.shopify_port}, stripe :{args.stripe_port}, smtp :{args.smtp_port}", flush=True
        )
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.emulators")
    parser.add_argument("--shopify-port", type=int, default=8101)
    parser.add_argument("--stripe-port", type=int, default=8102)
    parser.add_argument("--smtp-port", type=int, default=8125)
    parser.add_argument("--stripe-webhook-url", default="http://127.0.0.1:8003/webhooks/stripe")
    parser.add_argument("--stripe-webhook-secret", default="whsec_dev_only")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
