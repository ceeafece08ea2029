from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from shared.money import Currency, Money

Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["DE"], description="ISO 3166-1 alpha-2")]
Price = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Grams = Annotated[int, Field(gt=0, le=1_000_000)]


def _ordered(low, high, what: str) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"{what}: the minimum is above the maximum")


class Bracket(BaseModel):
    max_weight_grams: Grams
    price: Price


class RateTable(BaseModel):
    """Either `first_weight_grams` + `first_price` (then `step_weight_grams` + `step_price` per started step), or
    `brackets` (the first bracket whose maximum weight fits gives the price)."""

    first_weight_grams: Grams | None = None
    first_price: Price | None = None
    step_weight_grams: Grams | None = None
    step_price: Price | None = None
    brackets: list[Bracket] = Field(default=[], max_length=100)

    @model_validator(mode="after")
    def _one_kind(self) -> RateTable:
        stepped = (self.first_weight_grams, self.first_price)
        if self.brackets:
            if any(v is not None for v in (*stepped, self.step_weight_grams, self.step_price)):
                raise ValueError("a rate table has either brackets or first/step weights, not both")
        elif None in stepped:
            raise ValueError("a rate table needs first_weight_grams and first_price, or brackets")
        elif (self.step_weight_grams is None) != (self.step_price is None):
            raise ValueError("step_weight_grams and step_price go together")
        return self


class ShippingMethodIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["YunExpress Global Direct"])
    carrier: str = Field(
        min_length=1, max_length=100, description="the carrier name stores accept", examples=["YunExpress"]
    )
    currency: Currency
    rates: dict[Country, RateTable] = Field(min_length=1, description="destination country -> its rate table")
    delivery_days_min: int = Field(ge=0, le=365)
    delivery_days_max: int = Field(ge=0, le=365)
    max_weight_grams: Grams
    enabled: bool = True

    @model_validator(mode="after")
    def _days(self) -> ShippingMethodIn:
        _ordered(self.delivery_days_min, self.delivery_days_max, "delivery days")
        return self


class ShippingMethodPublic(ShippingMethodIn):
    id: str
    destination_countries: list[str]
    created_at: datetime


class ShippingMethodPage(BaseModel):
    items: list[ShippingMethodPublic]
    next_cursor: str | None


class QuoteItem(BaseModel):
    method_id: str
    name: str
    carrier: str
    price: Money
    delivery_days_min: int
    delivery_days_max: int


class UnavailableMethod(BaseModel):
    method_id: str
    name: str
    reason: str


class SelectedShipping(BaseModel):
    """What the shipping rules chose for the order, and why; `problem` flags an order whose method cannot ship it."""

    method_id: str | None
    rule_id: str | None
    reason: str | None
    problem: str | None


class ShippingQuote(BaseModel):
    order_id: str
    country: str
    weight_grams: int
    items: list[QuoteItem] = Field(description="every method that can ship the order, cheapest first")
    unavailable: list[UnavailableMethod] | None = Field(description="with ?explain=true: the others, with why")
    selected: SelectedShipping


class RuleConditions(BaseModel):
    """All given conditions must hold; an empty list or a missing bound means 'any'. Amounts are in the order's
    currency: `amount` is the order's products + packaging cost, `freight` the price of the method picked."""

    countries: list[Country] = Field(default=[], max_length=250)
    amount_min: Price | None = None
    amount_max: Price | None = None
    freight_min: Price | None = None
    freight_max: Price | None = None
    store_ids: list[str] = Field(default=[], max_length=250)
    skus: list[str] = Field(default=[], max_length=1000)
    catalog_variant_ids: list[str] = Field(default=[], max_length=1000)
    weight_min_grams: int | None = Field(default=None, ge=0)
    weight_max_grams: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ranges(self) -> RuleConditions:
        _ordered(self.amount_min, self.amount_max, "amount")
        _ordered(self.freight_min, self.freight_max, "freight")
        _ordered(self.weight_min_grams, self.weight_max_grams, "weight")
        return self


class ShippingRuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    priority: int = Field(ge=0, le=1_000_000, description="rules run lowest first; the first match wins")
    enabled: bool = True
    conditions: RuleConditions = RuleConditions()
    action: Literal["method", "cheapest", "fastest"] = Field(
        description="ship with `method_ids[0]`, or the cheapest / fastest of `method_ids` that can ship the order"
    )
    method_ids: list[str] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _one_method(self) -> ShippingRuleIn:
        if self.action == "method" and len(self.method_ids) != 1:
            raise ValueError("the 'method' action takes exactly one method id")
        return self


class ShippingRulePublic(ShippingRuleIn):
    id: str
    created_at: datetime


class ShippingRulePage(BaseModel):
    items: list[ShippingRulePublic]
    next_cursor: str | None


class ShippingSettings(BaseModel):
    default_method_id: str | None = Field(description="the method of orders no rule matches")


class PreviewRequest(BaseModel):
    order_ids: list[str] = Field(min_length=1, max_length=1000)
    rules: list[ShippingRuleIn] | None = Field(default=None, description="draft rules to try instead of the saved")
    default_method_id: str | None = Field(default=None, description="with draft rules: the default to try")


class PreviewItem(BaseModel):
    order_id: str
    order_name: str
    method_id: str | None
    method_name: str | None
    price: Money | None
    rule_id: str | None
    reason: str
    problem: str | None


class PreviewResult(BaseModel):
    items: list[PreviewItem]


class RerunResult(BaseModel):
    orders: int = Field(description="To Order and Pending orders the rules were applied to")
    flagged: int = Field(description="of which their method cannot ship them")
