"""Pure rules of the tracking service: warehouse steps, the carrier timeline, the customer's email, the rate limit."""

from datetime import UTC, datetime, timedelta

import pytest

from services.tracking.api.rate_limit import TokenBuckets, retry_after
from services.tracking.domain import notification, timeline
from services.tracking.domain.fulfillment import Fulfillment, Step
from shared.errors import IllegalTransition

ACTIONS = {
    "purchase": lambda f: f.complete_purchase("ops"),
    "pass": lambda f: f.pass_quality_check("ops"),
    "fail": lambda f: f.fail_quality_check("scratched", "ops"),
    "pack": lambda f: f.complete_packing("ops"),
    "label": lambda f: f.assign_label("YunExpress", "YT1", "ops"),
    "ship": lambda f: f.ship("ops"),
}
# What each step allows; everything else must be refused with the current step named.
ALLOWED = {
    Step.PURCHASING: {"purchase"},
    Step.QUALITY_CHECK: {"pass", "fail"},
    Step.PACKING: {"pack"},
    Step.LABELLING: {"label"},  # ship too, once labelled (below)
    Step.SHIPPED: set(),
}
PATH = {
    Step.QUALITY_CHECK: ["purchase"],
    Step.PACKING: ["purchase", "pass"],
    Step.LABELLING: ["purchase", "pass", "pack"],
}
PATH[Step.SHIPPED] = [*PATH[Step.LABELLING], "label", "ship"]


def at_step(step: Step) -> Fulfillment:
    f = Fulfillment(id="f1", order_id="o1", merchant_id="m1")
    for name in PATH.get(step, []):
        ACTIONS[name](f)
    assert f.step == step
    return f


@pytest.mark.parametrize("step", list(Step))
def test_each_step_refuses_every_move_but_its_own(step):
    for name, action in ACTIONS.items():
        f = at_step(step)
        if name in ALLOWED[step]:
            action(f)
            continue
        before = list(f.history)
        with pytest.raises(IllegalTransition, match=f"is {step.value}") as refused:
            action(f)
        assert refused.value.current.startswith(step)
        assert f.step == step and f.history == before


def test_each_step_moves_to_the_next_and_records_who():
    f = at_step(Step.PURCHASING)
    moves = [("purchase", Step.QUALITY_CHECK), ("pass", Step.PACKING), ("pack", Step.LABELLING)]
    moves += [("label", Step.LABELLING), ("ship", Step.SHIPPED)]
    for name, expected in moves:
        ACTIONS[name](f)
        assert f.step == expected
    assert len(f.history) == 5 and all(h.actor == "ops" for h in f.history)
    assert f.history[-1].detail == "handed to YunExpress"


def test_a_failed_quality_check_goes_back_to_purchasing_with_the_notes():
    f = at_step(Step.QUALITY_CHECK)
    ACTIONS["fail"](f)
    assert f.step == Step.PURCHASING and "scratched" in f.history[-1].detail


def test_a_label_can_be_corrected_before_shipping():
    f = at_step(Step.LABELLING)
    f.assign_label("UPS", "1Z1", "ops")
    f.assign_label("USPS", "9400", "ops")
    f.ship("ops")
    assert (f.carrier, f.tracking_number) == ("USPS", "9400")


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def scan(hours: int, status: str) -> timeline.Checkpoint:
    return timeline.Checkpoint(T0 + timedelta(hours=hours), status)


def test_the_timeline_follows_scan_times_not_arrival_order():
    arrived = [scan(48, "Delivered"), scan(0, "InfoReceived"), scan(30, "OutForDelivery"), scan(10, "InTransit")]
    assert [c.status for c in timeline.ordered(arrived)] == ["InfoReceived", "InTransit", "OutForDelivery", "Delivered"]
    assert timeline.current(arrived).status == "Delivered"
    assert timeline.current([]) is None


def test_on_equal_scan_times_the_one_listed_last_is_current():
    assert timeline.current([scan(5, "OutForDelivery"), scan(5, "Delivered")]).status == "Delivered"


def test_only_a_change_to_delivered_or_exception_is_announced():
    assert timeline.announcement("InTransit", scan(1, "Delivered")).status == "Delivered"
    assert timeline.announcement("Delivered", scan(1, "Delivered")) is None
    assert timeline.announcement("Pending", scan(1, "InTransit")) is None
    assert timeline.announcement("InTransit", scan(1, "Exception")).status == "Exception"


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("pt-BR", "pt-BR"),
        ("pt", "pt-BR"),
        ("pt_br", "pt-BR"),
        ("PT-pt", "pt-BR"),
        ("en-US", "en"),
        ("de", "en"),
        (None, "en"),
        ("", "en"),
        ("portuguese", "en"),
    ],
)
def test_language_from_the_customer_locale(locale, language):
    assert notification.language_for(locale) == language


@pytest.mark.parametrize("address", [None, "", "no-at-sign", "a@b", "two@@example.com", "sp ace@example.com"])
def test_invalid_addresses_have_a_reason(address):
    assert notification.invalid_address_reason(address)


def test_valid_address_has_no_reason():
    assert notification.invalid_address_reason("ana.souza+shop@example.com.br") is None


def test_backoff_doubles_and_is_capped():
    delays = [notification.retry_delay(n, 10, cap_seconds=60).total_seconds() for n in range(1, 6)]
    assert delays == [10, 20, 40, 60, 60]


def test_message_id_is_derived_from_the_shipment():
    assert notification.message_id("s-1", "shipping@agent.example") == "<shipment-s-1@agent.example>"
    assert notification.message_id("s-1", "x@y.z") == notification.message_id("s-1", "x@y.z")


def test_token_bucket_allows_a_burst_then_says_when_to_come_back():
    buckets = TokenBuckets(rate_per_second=0.5, burst=2)
    assert buckets.take("a", now=0) == 0 and buckets.take("a", now=0) == 0
    wait = buckets.take("a", now=0)
    assert wait == pytest.approx(2.0) and retry_after(wait) == "2"
    assert buckets.take("b", now=0) == 0  # per client
    assert buckets.take("a", now=2.0) == 0  # refilled


def test_token_bucket_forgets_the_oldest_clients_beyond_its_size():
    buckets = TokenBuckets(rate_per_second=1, burst=1, max_clients=2)
    for client in ("a", "b", "c"):
        buckets.take(client, now=0)
    assert buckets.take("a", now=0) == 0  # forgotten, so a fresh bucket
    assert buckets.take("c", now=0) > 0
