"""What a tracking write-back sends to the store: carrier names mapped to the platform's list, the tracking
link from the store's template, and the retry schedule. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.sync.domain.store_settings import StoreSettings

# Shopify builds the tracking link itself only for names on its list, matched exactly (a subset we ship with).
SHOPIFY_CARRIERS = (
    "4PX",
    "Canada Post",
    "China EMS (ePacket)",
    "China Post",
    "Correios",
    "DHL eCommerce",
    "DHL eCommerce Asia",
    "DHL Express",
    "FedEx",
    "GLS",
    "La Poste",
    "Royal Mail",
    "SF Express",
    "UPS",
    "USPS",
    "Yanwen",
    "YunExpress",
)
_ALIASES = {
    "dhl": "DHL Express",
    "epacket": "China EMS (ePacket)",
    "china ems": "China EMS (ePacket)",
    "yun express": "YunExpress",
    "fedex express": "FedEx",
    "united states postal service": "USPS",
    "sf": "SF Express",
}
_BY_LOWER = {name.lower(): name for name in SHOPIFY_CARRIERS} | _ALIASES


@dataclass(frozen=True)
class TrackingInfo:
    number: str
    company: str
    url: str
    listed: bool  # the company is on the platform's list


def shopify_company(carrier: str) -> str | None:
    """Shopify's spelling of a carrier, or None when Shopify does not list it."""
    return _BY_LOWER.get(carrier.strip().lower())


def tracking_info(carrier: str, number: str, settings: StoreSettings) -> TrackingInfo:
    """The store's carrier-name override wins; an unlisted carrier is sent as named, with our tracking link."""
    name = settings.carrier_name or carrier
    listed = shopify_company(name)
    return TrackingInfo(number=number, company=listed or name, url=settings.tracking_url(number), listed=bool(listed))


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """Exponential backoff after the n-th failed attempt, capped at an hour."""
    return timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), 3600))
