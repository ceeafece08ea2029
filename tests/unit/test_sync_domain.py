"""The sync service's pure domain: WooCommerce normalisation, the store settings' rules, tracking write-back
values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.sync.domain import shopify, woocommerce
from services.sync.domain.parsing import UnusableOrder
from services.sync.domain.store_settings import StoreSettings, skip_reason
from services.sync.domain.tracking import retry_delay, shopify_company, tracking_info
from tools.demo import shopify_order


def woo_order(**changes) -> dict:
    order = {
        "id": 727,
        "number": "727",
        "status": "processing",
        "currency": "EUR",
        "total": "29.85",
        "date_created_gmt": "2026-11-20T10:00:00",
        "date_modified_gmt": "2026-11-20T10:05:00",
        "billing": {"email": "ana@example.com", "phone": "+351 912 345 678"},
        "shipping": {
            "first_name": "Ana",
            "last_name": "Silva",
            "address_1": "Rua A 1",
            "city": "Lisboa",
            "state": "LX",
            "postcode": "1000-001",
            "country": "PT",
        },
        "line_items": [
            {"id": 5, "name": "Mug", "product_id": 93, "variation_id": 0, "quantity": 3, "sku": "MUG", "price": 9.95}
            | {"total": "29.85"}
        ],
    }
    return order | changes


def test_a_woocommerce_order_is_normalised():
    order = woocommerce.normalise("s1", woo_order())
    assert (order.platform, order.external_order_id, order.order_name) == ("woocommerce", "727", "#727")
    assert (order.financial_status, order.fulfillment_status) == ("paid", None)
    assert order.store_updated_at == datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    (line,) = order.lines
    assert (line.external_product_id, line.external_variant_id, line.quantity) == ("93", None, 3)
    assert str(line.unit_price.amount) == "9.95" and line.unit_price.currency == "EUR"
    address = order.shipping_address
    assert (address.name, address.country_code, address.phone) == ("Ana Silva", "PT", "+351 912 345 678")
    assert order.customer_email == "ana@example.com"


@pytest.mark.parametrize(
    ("status", "financial", "fulfillment"),
    [("pending", "pending", None), ("on-hold", "authorized", None), ("completed", "paid", "fulfilled")],
)
def test_woocommerce_statuses_map_to_payment_and_fulfilment(status, financial, fulfillment):
    order = woocommerce.normalise("s1", woo_order(status=status))
    assert (order.financial_status, order.fulfillment_status) == (financial, fulfillment)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"total": None}, "total"),
        ({"line_items": []}, "line_items"),
        ({"date_modified_gmt": "soon"}, "date_modified_gmt"),
    ],
)
def test_a_woocommerce_payload_that_lacks_what_we_need_names_the_field(changes, field):
    with pytest.raises(UnusableOrder) as error:
        woocommerce.normalise("s1", woo_order(**changes))
    assert error.value.field == field


def test_woocommerce_deliveries_are_keyed_by_order_and_modification():
    assert woocommerce.delivery_key(woo_order(), "order.updated") == "727:2026-11-20T10:05:00"
    assert woocommerce.delivery_key({"id": 727}, "order.deleted") == "727:deleted"
    assert woocommerce.cancellation(woo_order(status="cancelled")).external_order_id == "727"
    assert woocommerce.cancellation(woo_order()) is None


def test_shopify_tags_and_cancellation_are_read():
    data = shopify_order(1) | {"tags": "vip, Wholesale ,", "cancelled_at": None}
    assert shopify.normalise("s1", data).tags == ["vip", "Wholesale"]
    assert shopify.cancellation(data) is None
    cancelled = shopify.cancellation(data | {"cancelled_at": "2026-11-20T10:00:00-05:00", "cancel_reason": "fraud"})
    assert (cancelled.reason, cancelled.cancelled_at.utcoffset()) == ("fraud", timedelta(hours=-5))


def test_settings_skip_tags_and_orders_created_before_the_date():
    order = shopify.normalise("s1", shopify_order(1) | {"tags": "Wholesale"})
    assert skip_reason(order, StoreSettings()) is None
    assert skip_reason(order, StoreSettings(skip_tags=["wholesale "])) == "tagged wholesale"
    later = order.store_created_at + timedelta(days=1)
    assert skip_reason(order, StoreSettings(created_after=later)).startswith("created before")
    pending = shopify.normalise("s1", shopify_order(2, financial_status="pending"))
    assert skip_reason(pending, StoreSettings()) == "financial status is pending"
    assert skip_reason(pending, StoreSettings(include_unpaid=True)) is None


def test_settings_refuse_a_tracking_template_without_the_number():
    with pytest.raises(ValidationError):
        StoreSettings(tracking_url_template="https://track.example.com/")
    with pytest.raises(ValidationError):
        StoreSettings(tracking_url_template="http://track.example.com/{n}")


def test_carrier_names_are_mapped_to_shopifys_list():
    assert shopify_company("yunexpress") == "YunExpress"
    assert shopify_company("DHL") == "DHL Express"
    assert shopify_company("Acme Parcel") is None
    listed = tracking_info("usps", "9400", StoreSettings())
    assert (listed.company, listed.listed, listed.url) == ("USPS", True, "https://t.17track.net/en#nums=9400")
    overridden = tracking_info("usps", "9400", StoreSettings(carrier_name="Acme Parcel"))
    assert (overridden.company, overridden.listed) == ("Acme Parcel", False)


def test_write_back_retries_back_off_exponentially_up_to_an_hour():
    assert [retry_delay(n, 30).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_delay(20, 30) == timedelta(hours=1)
