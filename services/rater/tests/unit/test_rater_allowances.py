"""Allowances: cycles turning on the due day, included seconds consumed, thresholds and credit announced once."""

from datetime import date
from decimal import Decimal

import pytest

from tarifa_common.errors import InvalidInput
from tarifa_rater.domain.allowances import Usage, amend, consume, cycle_of


@pytest.mark.parametrize(
    ("day", "due_day", "start", "end"),
    [
        (date(2026, 11, 23), 10, date(2026, 11, 10), date(2026, 12, 9)),
        (date(2026, 11, 9), 10, date(2026, 10, 10), date(2026, 11, 9)),
        (date(2026, 11, 10), 10, date(2026, 11, 10), date(2026, 12, 9)),
        (date(2026, 1, 5), 25, date(2025, 12, 25), date(2026, 1, 24)),
        (date(2026, 12, 31), 1, date(2026, 12, 1), date(2026, 12, 31)),
        (date(2026, 3, 1), 1, date(2026, 3, 1), date(2026, 3, 31)),
    ],
)
def test_the_cycle_turns_on_the_due_day(day: date, due_day: int, start: date, end: date) -> None:
    assert cycle_of(day, due_day) == (start, end)


def test_a_due_day_after_the_25th_is_refused() -> None:
    with pytest.raises(InvalidInput, match="due_day"):
        cycle_of(date(2026, 11, 1), 28)


def test_included_seconds_are_free_and_the_overage_pays_its_share() -> None:
    usage = Usage(included_seconds=60)
    first = consume(usage, 36, Decimal("0.122"), None)
    second = consume(usage, 36, Decimal("0.122"), None)  # 24 s covered, 12 s overage: a third of the price
    third = consume(usage, 30, Decimal("0.11"), None)
    assert (first.covered_seconds, first.amount, first.thresholds) == (36, Decimal(0), ())
    assert (second.covered_seconds, second.amount, second.thresholds) == (24, Decimal("0.040666666667"), (80, 100))
    assert (third.covered_seconds, third.amount, third.thresholds) == (0, Decimal("0.11"), ())
    assert usage.used_seconds == 102


def test_the_credit_limit_is_announced_once_when_spending_passes_it() -> None:
    usage = Usage(included_seconds=0)
    assert not consume(usage, 60, Decimal("0.60"), Decimal("1.00")).credit_exceeded
    assert consume(usage, 60, Decimal("0.60"), Decimal("1.00")).credit_exceeded
    assert not consume(usage, 60, Decimal("0.60"), Decimal("1.00")).credit_exceeded
    assert usage.spent == Decimal("1.80")


def test_a_rerated_call_changes_the_cycle_by_its_difference_only() -> None:
    usage = Usage(included_seconds=100)
    consume(usage, 60, Decimal("0.30"), Decimal("0.50"))  # covered: 60 s used, nothing spent
    dearer = amend(usage, 0, Decimal("0.10"), Decimal("0.50"))
    longer = amend(usage, 24, Decimal("0.60"), Decimal("0.50"))  # 84 s and 0.70 counted now
    assert (usage.used_seconds, usage.spent) == (84, Decimal("0.70"))
    assert (dearer.thresholds, dearer.credit_exceeded) == ((), False)
    assert (longer.thresholds, longer.credit_exceeded) == ((80,), True)
