import pytest

from services.tracking.domain.carriers import tracking_url
from services.tracking.domain.fulfillment import Fulfillment, Step
from shared.errors import IllegalTransition


def job() -> Fulfillment:
    return Fulfillment(id="f1", order_id="o1", merchant_id="m1")


def test_steps_in_order_with_a_failed_quality_check_buying_again():
    f = job()
    f.complete_purchase("ops")
    f.fail_quality_check("scratched", "ops")
    assert f.step == Step.PURCHASING
    f.complete_purchase("ops")
    f.pass_quality_check("ops")
    f.complete_packing("ops")
    f.assign_label("YunExpress", "YT1", "ops")
    f.ship("ops")
    assert f.step == Step.SHIPPED
    assert [h.step for h in f.history][-1] == Step.SHIPPED


@pytest.mark.parametrize(
    "action",
    [
        lambda f: f.pass_quality_check("ops"),
        lambda f: f.complete_packing("ops"),
        lambda f: f.assign_label("c", "t", "ops"),
        lambda f: f.ship("ops"),
    ],
)
def test_a_step_out_of_order_names_the_current_step(action):
    f = job()
    with pytest.raises(IllegalTransition, match="is purchasing"):
        action(f)
    assert f.step == Step.PURCHASING


def test_shipping_needs_a_label():
    f = job()
    f.complete_purchase("ops")
    f.pass_quality_check("ops")
    f.complete_packing("ops")
    with pytest.raises(IllegalTransition):
        f.ship("ops")


def test_tracking_urls_from_templates_with_a_universal_fallback():
    assert tracking_url("YunExpress", "YT 1") == "https://www.yuntrack.com/parcelTracking?id=YT%201"
    assert tracking_url("Unknown Post", "X1") == "https://t.17track.net/en#nums=X1"
