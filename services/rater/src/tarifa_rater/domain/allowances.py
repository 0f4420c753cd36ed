"""Allowances: minutes included per line per billing cycle, the cycle turning on the line's due day.

A cycle runs from the due day (1 to 25, so every month has it) to the day before the next due
day. Charged seconds consume the included seconds in the order calls are rated; the part of a
call the allowance covers is free, the rest (the overage) pays its share of the call's price.
Thresholds (80 %, 100 %) and the credit limit are announced once per cycle, when crossed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from tarifa_common.errors import InvalidInput
from tarifa_rater.domain.money import ZERO, exact

THRESHOLDS = (80, 100)


def cycle_of(day: date, due_day: int) -> tuple[date, date]:
    """The cycle (first day, last day) that contains `day` for a line due on `due_day`."""
    if not 1 <= due_day <= 25:
        raise InvalidInput("due_day", "must be between 1 and 25")
    year, month = day.year, day.month
    if day.day < due_day:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    start = date(year, month, due_day)
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    end = date.fromordinal(date(next_year, next_month, due_day).toordinal() - 1)
    return start, end


@dataclass(slots=True)
class Usage:
    """A line's use of one cycle so far, and which announcements were made."""

    included_seconds: int
    used_seconds: int = 0
    spent: Decimal = ZERO
    announced: set[int] = field(default_factory=set)  # thresholds already announced
    credit_announced: bool = False


@dataclass(frozen=True, slots=True)
class Consumption:
    covered_seconds: int
    amount: Decimal  # what the call costs after the allowance
    thresholds: tuple[int, ...]  # crossed by this call
    credit_exceeded: bool


def consume(usage: Usage, charged_seconds: int, amount: Decimal, credit_limit: Decimal | None) -> Consumption:
    """Apply one call to `usage` (mutated) and say what it costs and what must be announced."""
    remaining = max(usage.included_seconds - usage.used_seconds, 0)
    covered = min(remaining, charged_seconds)
    if charged_seconds and covered:
        amount = exact(amount * (charged_seconds - covered) / charged_seconds)
    usage.used_seconds += charged_seconds
    usage.spent += amount
    crossed, exceeded = _announce(usage, credit_limit)
    return Consumption(covered, amount, crossed, exceeded)


def amend(usage: Usage, seconds: int, amount: Decimal, credit_limit: Decimal | None) -> Consumption:
    """Apply a re-rated call's difference (`seconds` and `amount`, new version minus old) to `usage`.

    A re-rate replaces a call's version: the cycle counts the difference, never the call twice.
    The seconds the allowance covered stay with the call, so nothing else changes price; a
    threshold or the credit limit the difference crosses is announced (once per cycle, as ever).
    """
    usage.used_seconds = max(usage.used_seconds + seconds, 0)
    usage.spent += amount
    crossed, exceeded = _announce(usage, credit_limit)
    return Consumption(0, amount, crossed, exceeded)


def _announce(usage: Usage, credit_limit: Decimal | None) -> tuple[tuple[int, ...], bool]:
    crossed: list[int] = []
    if usage.included_seconds > 0:
        for level in THRESHOLDS:
            if level not in usage.announced and usage.used_seconds * 100 >= usage.included_seconds * level:
                usage.announced.add(level)
                crossed.append(level)
    exceeded = False
    if credit_limit is not None and not usage.credit_announced and usage.spent > credit_limit:
        usage.credit_announced = exceeded = True
    return tuple(crossed), exceeded
