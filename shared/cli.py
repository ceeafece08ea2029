"""Command line: `python -m services.<name> serve|migrate|revision`, and `dropship token|export-events`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from shared.settings import ServiceSettings


def service_main(package: str, settings_factory: Callable[[], ServiceSettings], app_path: str) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {package}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP API, the outbox relay and the event consumer")
    sub.add_parser("migrate", help="apply this service's migrations to its schema")
    revision = sub.add_parser("revision", help="autogenerate a migration from the table definitions")
    revision.add_argument("-m", "--message", required=True)
    args = parser.parse_args()
    settings = settings_factory()
    if args.command == "serve":
        import uvicorn

        uvicorn.run(
            app_path,
            factory=True,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            loop="uvloop",
            http="httptools",
        )
    elif args.command == "migrate":
        from shared.migrations import upgrade

        upgrade(package, settings)
    else:
        from alembic import command

        from shared.migrations import alembic_config

        command.revision(alembic_config(package, settings), message=args.message, autogenerate=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="dropship")
    sub = parser.add_subparsers(dest="command", required=True)
    token = sub.add_parser("token", help="mint a development bearer token (HS256, AUTH_JWT_SECRET)")
    token.add_argument("--merchant", default="demo-merchant")
    token.add_argument("--role", choices=["merchant", "ops"], default="merchant")
    token.add_argument("--sub", default=None)
    token.add_argument("--hours", type=float, default=12)
    export = sub.add_parser("export-events", help="write the event catalog as JSON Schema and AsyncAPI")
    export.add_argument("--out", default="docs/events")
    args = parser.parse_args()
    if args.command == "token":
        import datetime as dt

        from shared.auth import mint_token

        secret = ServiceSettings().auth_jwt_secret.get_secret_value()
        sub_ = args.sub or f"{args.role}@{args.merchant}"
        print(
            mint_token(secret, sub=sub_, merchant_id=args.merchant, role=args.role, ttl=dt.timedelta(hours=args.hours))
        )
    else:
        from shared.catalog_docs import asyncapi_document, event_schemas

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, schema in event_schemas().items():
            (out / f"{name}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
        (out / "asyncapi.json").write_text(json.dumps(asyncapi_document(), indent=2) + "\n")
        print(f"wrote the event catalog to {out}")
