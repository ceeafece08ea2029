"""A store's sync settings and the rule that decides which store orders come in. Pure, no I/O."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from shared.events import StoreOrder

UNIVERSAL_TRACKING_URL = "https://t.17track.net/en#nums={n}"
PAID = {"paid", "partially_refunded"}
AWAITING_PAYMENT = {"pending", "authorized", "partially_paid"}


class StoreSettings(BaseModel):
    """Defaults as the seed says: auto-sync on, only paid and unfulfilled orders."""

    auto_sync: bool = True
    include_unpaid: bool = Field(default=False, description="also sync orders whose payment is pending or authorized")
    created_after: AwareDatetime | None = Field(default=None, description="only orders created after this time")
    skip_tags: list[str] = Field(default=[], max_length=50, description="orders with any of these tags are skipped")
    notify_customer: bool = Field(
        default=False, description="the store emails the customer the tracking (then we do not, so nobody gets two)"
    )
    carrier_name: str | None = Field(
        default=None, max_length=100, description="the carrier name sent to the store instead of the shipment's"
    )
    tracking_url_template: str = Field(
        default=UNIVERSAL_TRACKING_URL, max_length=500, description="the tracking link; {n} is the tracking number"
    )

    @field_validator("tracking_url_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if not value.startswith("https://") or "{n}" not in value:
            raise ValueError("must be an https:// URL containing {n}")
        return value

    @field_validator("skip_tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return sorted({t.strip().lower() for t in value if t.strip()})

    def tracking_url(self, number: str) -> str:
        return self.tracking_url_template.replace("{n}", number)


def skip_reason(order: StoreOrder, settings: StoreSettings) -> str | None:
    """Why an order is not synced under these settings, or None when it is."""
    if order.fulfillment_status not in (None, "unfulfilled"):
        return f"fulfillment status is {order.fulfillment_status}"
    wanted = PAID | AWAITING_PAYMENT if settings.include_unpaid else PAID
    if order.financial_status not in wanted:
        return f"financial status is {order.financial_status}"
    if settings.created_after is not None and order.store_created_at <= settings.created_after:
        return f"created before {settings.created_after.isoformat()}"
    tagged = sorted(set(settings.skip_tags) & {t.lower() for t in order.tags})
    if tagged:
        return f"tagged {', '.join(tagged)}"
    return None
