"""A fulfillment job: what the warehouse does for one paid order, step by step. Steps move only forward through
these methods (a failed quality check sends the goods back to purchasing); anything else is IllegalTransition."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from shared.errors import IllegalTransition


class Step(StrEnum):
    PURCHASING = "purchasing"
    QUALITY_CHECK = "quality_check"
    PACKING = "packing"
    LABELLING = "labelling"
    SHIPPED = "shipped"


@dataclass(frozen=True)
class StepEntry:
    step: Step
    detail: str
    actor: str


@dataclass
class Fulfillment:
    id: str
    order_id: str
    merchant_id: str
    step: Step = Step.PURCHASING
    carrier: str | None = None
    tracking_number: str | None = None
    version: int = 0
    history: list[StepEntry] = field(default_factory=list)

    def _require(self, step: Step, action: str) -> None:
        if self.step != step:
            raise IllegalTransition("fulfillment step", self.step, action)

    def _to(self, step: Step, detail: str, actor: str) -> None:
        self.step = step
        self.history.append(StepEntry(step, detail, actor))

    def complete_purchase(self, actor: str) -> None:
        self._require(Step.PURCHASING, "complete the purchase")
        self._to(Step.QUALITY_CHECK, "bought from the factory", actor)

    def pass_quality_check(self, actor: str) -> None:
        self._require(Step.QUALITY_CHECK, "pass the quality check")
        self._to(Step.PACKING, "quality check passed", actor)

    def fail_quality_check(self, notes: str, actor: str) -> None:
        self._require(Step.QUALITY_CHECK, "fail the quality check")
        self._to(Step.PURCHASING, f"quality check failed, buying again: {notes}", actor)

    def complete_packing(self, actor: str) -> None:
        self._require(Step.PACKING, "complete packing")
        self._to(Step.LABELLING, "packed with the merchant's packaging", actor)

    def assign_label(self, carrier: str, tracking_number: str, actor: str) -> None:
        self._require(Step.LABELLING, "assign a label")
        self.carrier, self.tracking_number = carrier, tracking_number
        self.history.append(StepEntry(self.step, f"label {carrier} {tracking_number}", actor))

    def ship(self, actor: str) -> None:
        self._require(Step.LABELLING, "ship")
        if not self.tracking_number or not self.carrier:
            raise IllegalTransition("fulfillment step", "labelling without a label", "ship")
        self._to(Step.SHIPPED, f"handed to {self.carrier}", actor)
