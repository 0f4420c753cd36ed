"""Pricing one call: free threshold, minimum then increments, connect fee, minimum charge, time bands.

Brazilian conventions are the defaults (Anatel's STFC practice): calls shorter than 3 seconds
are free, a charged call counts at least 30 seconds and then 6-second steps, unanswered calls
are free. Every one of them is a parameter, because other operators and countries differ.

A call crossing a band boundary (20:59 to 21:04, normal into reduced) is priced entirely in
the band in force when it started: that is how Brazilian operators bill (the tariff in force
at the start of the call governs the call), and it makes the price of a call independent of
how long it lasted on each side of the boundary, which a customer can check on the bill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from tarifa_rater.domain.money import ZERO, exact

SIXTY = Decimal(60)


class Band(StrEnum):
    NORMAL = "normal"
    REDUCED = "reduced"


@dataclass(frozen=True, slots=True)
class TimeBands:
    """When the normal band applies (local time); everything else, and holidays, is reduced.

    Default: Monday to Saturday, 07:00 to 21:00 normal; nights, Sundays and holidays reduced.
    """

    normal_weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4, 5})  # Monday = 0
    normal_from_hour: int = 7
    normal_until_hour: int = 21
    holidays: frozenset[date] = field(default_factory=frozenset)
    # The band of each hour of the week (weekday * 24 + hour), computed once: one index per call.
    week: tuple[Band, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        week = tuple(
            Band.NORMAL
            if day in self.normal_weekdays and self.normal_from_hour <= hour < self.normal_until_hour
            else Band.REDUCED
            for day in range(7)
            for hour in range(24)
        )
        object.__setattr__(self, "week", week)

    def band_at(self, local_start: datetime, holidays: frozenset[date] = frozenset()) -> Band:
        """The band of a call that started at `local_start` (the tenant's wall clock).

        `holidays` adds days (the tenant's) to the bands' own: both are reduced all day.
        """
        if (self.holidays or holidays) and (local_start.date() in self.holidays or local_start.date() in holidays):
            return Band.REDUCED
        return self.week[local_start.weekday() * 24 + local_start.hour]


@dataclass(frozen=True, slots=True)
class Rate:
    """One price: what a minute costs (sell and cost), how seconds are counted, the fixed parts."""

    name: str
    price_per_minute: Decimal
    reduced_price_per_minute: Decimal | None = None  # None: the same price in every band
    connect_fee: Decimal = ZERO  # "taxa de conexão", charged once per charged call
    cost_per_minute: Decimal | None = None  # what the carrier charges us, for margin
    first_increment: int = 30  # the minimum counted once a call is charged
    next_increment: int = 6
    minimum_charge: Decimal = ZERO  # a charged call costs at least this, connect fee included
    free_seconds: int = 3  # calls shorter than this are free
    free_inclusive: bool = False  # True: a call of exactly `free_seconds` is free too
    charge_unanswered: bool = False

    def per_minute(self, band: Band) -> Decimal:
        if band is Band.REDUCED and self.reduced_price_per_minute is not None:
            return self.reduced_price_per_minute
        return self.price_per_minute


@dataclass(frozen=True, slots=True)
class Price:
    """The price of one call and how it was reached (amounts unrounded)."""

    charged_seconds: int
    amount: Decimal
    cost_amount: Decimal | None
    connect_fee: Decimal
    per_minute: Decimal
    band: Band
    increments: int  # how many next increments after the first
    free_reason: str | None = None  # "unanswered", "under_threshold" when the call is free

    def breakdown(self) -> dict[str, str]:
        parts = {
            "charged_seconds": str(self.charged_seconds),
            "connect_fee": str(self.connect_fee),
            "per_minute": str(self.per_minute),
            "band": self.band.value,
            "increments": str(self.increments),
        }
        if self.free_reason:
            parts["free"] = self.free_reason
        return parts


def is_free(billable_seconds: int, rate: Rate) -> bool:
    if billable_seconds < rate.free_seconds:
        return True
    return rate.free_inclusive and billable_seconds == rate.free_seconds


def charged_seconds(billable_seconds: int, rate: Rate) -> int:
    """Seconds billed: 0 when free, else the first increment plus whole next increments."""
    if billable_seconds <= 0 or is_free(billable_seconds, rate):
        return 0
    if billable_seconds <= rate.first_increment:
        return rate.first_increment
    beyond = billable_seconds - rate.first_increment
    steps = -(-beyond // rate.next_increment)
    return rate.first_increment + steps * rate.next_increment


PriceMemo = dict[tuple[int, int], "Price"]
MEMO_LIMIT = 200_000


def price_call(billable_seconds: int, answered: bool, band: Band, rate: Rate, memo: PriceMemo | None = None) -> Price:
    """Price a call of `billable_seconds` talk time, started in `band`, at `rate`.

    `memo` (kept by a tariff plan, whose rates live as long as it does) remembers the price of
    each (rate, band, answered, billable seconds): a price depends on nothing else, the Decimal
    arithmetic is the costly part, and durations repeat. It is bounded: cleared when it reaches
    `MEMO_LIMIT` entries.
    """
    if memo is not None:
        key = (id(rate), billable_seconds * 4 + (2 if answered else 0) + (band is Band.REDUCED))
        found = memo.get(key)
        if found is not None:
            return found
        price = _price(billable_seconds, answered, band, rate)
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[key] = price
        return price
    return _price(billable_seconds, answered, band, rate)


def _price(billable_seconds: int, answered: bool, band: Band, rate: Rate) -> Price:
    per_minute = rate.per_minute(band)
    if not answered and not rate.charge_unanswered:
        return Price(
            0, ZERO, ZERO if rate.cost_per_minute is not None else None, ZERO, per_minute, band, 0, "unanswered"
        )
    seconds = charged_seconds(billable_seconds, rate)
    if seconds == 0:
        free = ZERO if rate.cost_per_minute is not None else None
        return Price(0, ZERO, free, ZERO, per_minute, band, 0, "under_threshold")
    increments = (seconds - rate.first_increment) // rate.next_increment if seconds > rate.first_increment else 0
    amount = rate.connect_fee + per_minute * seconds / SIXTY
    if amount < rate.minimum_charge:
        amount = rate.minimum_charge
    amount = exact(amount)
    cost = exact(rate.cost_per_minute * seconds / SIXTY) if rate.cost_per_minute is not None else None
    return Price(seconds, amount, cost, rate.connect_fee, per_minute, band, increments)
