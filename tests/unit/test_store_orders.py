import json
import uuid

import pytest

from services.sync.domain import shopify
from services.sync.handlers import ORDER_ID_NAMESPACE, order_id_for
from shared.signatures import hmac_sha256_base64, valid_base64_hmac
from tools.demo import shopify_order


def test_a_shopify_order_is_normalised():
    order = shopify.normalise("s1", shopify_order(1, lines=[(7, 8, "SKU-1", 2, "9.95")]))
    assert order.external_order_id == "450789469001"
    assert order.order_name == "#1001"
    assert str(order.total_price.amount) == "19.90"
    assert order.shipping_address.country_code == "US" and order.shipping_address.name == "Ana Silva"
    (line,) = order.lines
    assert (line.external_product_id, line.external_variant_id, line.sku, line.quantity) == ("7", "8", "SKU-1", 2)
    assert str(line.unit_price.amount) == "9.95"
    assert order.store_updated_at.tzinfo is not None


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("currency"), "currency"),
        (lambda d: d.update(line_items=[]), "line_items"),
        (lambda d: d["line_items"][0].update(quantity=0), "line_items[0].quantity"),
        (lambda d: d.update(total_price="abc"), "total_price"),
        (lambda d: d.update(updated_at="yesterday"), "updated_at"),
    ],
)
def test_a_payload_that_lacks_what_we_need_names_the_field(mutate, field):
    data = shopify_order(1)
    mutate(data)
    with pytest.raises(shopify.UnusableOrder) as error:
        shopify.normalise("s1", data)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("financial", "fulfillment", "include_unpaid", "reason"),
    [
        ("paid", None, False, None),
        ("pending", None, False, "financial status is pending"),
        ("authorized", None, True, None),
        ("paid", "fulfilled", False, "fulfillment status is fulfilled"),
    ],
)
def test_only_paid_unfulfilled_orders_sync_by_default(financial, fulfillment, include_unpaid, reason):
    data = shopify_order(1, financial_status=financial)
    data["fulfillment_status"] = fulfillment
    assert shopify.wanted(shopify.normalise("s1", data), include_unpaid=include_unpaid) == reason


def test_signatures_are_checked_on_the_raw_body():
    body = json.dumps(shopify_order(1)).encode()
    good = hmac_sha256_base64("secret", body)
    assert valid_base64_hmac("secret", body, good)
    assert not valid_base64_hmac("other", body, good)
    assert not valid_base64_hmac("secret", body + b" ", good)
    assert not valid_base64_hmac("secret", body, None)


@pytest.mark.parametrize(("store_id", "external_id"), [("s1", "450789469001"), ("0b9e-x", ""), ("é", "ü中#1")])
def test_an_order_id_is_the_uuid5_of_store_and_external_id(store_id, external_id):
    assert order_id_for(store_id, external_id) == str(uuid.uuid5(ORDER_ID_NAMESPACE, f"{store_id}:{external_id}"))
