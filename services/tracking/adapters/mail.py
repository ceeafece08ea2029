"""The customer's shipping email: rendered from Jinja2 templates (HTML and text) per language, sent over SMTP."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from functools import lru_cache
from pathlib import Path

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.tracking.settings import TrackingSettings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.jinja",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render_shipped(language: str, **context: object) -> Rendered:
    env = _environment()

    def render(name: str) -> str:
        return env.get_template(f"shipped/{language}/{name}.jinja").render(**context)

    return Rendered(subject=render("subject.txt").strip(), text=render("body.txt"), html=render("body.html"))


class PermanentFailure(Exception):
    """The server refused the message for good (5xx): retrying cannot help."""


class SmtpMailer:
    def __init__(self, settings: TrackingSettings) -> None:
        self._settings = settings

    async def send(
        self, *, recipient: str, subject: str, text: str, html: str, message_id: str, store_name: str
    ) -> None:
        s = self._settings
        message = EmailMessage()
        message["From"] = formataddr((store_name, s.email_from)) if store_name else s.email_from
        message["To"] = recipient
        message["Subject"] = subject
        message["Message-ID"] = message_id
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                use_tls=s.smtp_use_tls,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                timeout=s.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as exc:
            if _permanent(exc):
                raise PermanentFailure(str(exc)) from exc
            raise


def _permanent(exc: Exception) -> bool:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500
