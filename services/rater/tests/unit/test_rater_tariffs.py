"""Tariff plans: CSV with line-numbered errors, activation dates, assignment fallback, and rating a call."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tarifa_rater.domain.numbering import CallClass, NumberingPlan
from tarifa_rater.domain.rating import (
    NO_TARIFF,
    UNKNOWN_EXTENSION,
    CallToRate,
    DirectoryEntry,
    Rating,
    Unratable,
    rate_call,
)
from tarifa_rater.domain.tariffs import PlanBook, TariffFileInvalid, TariffPlan, parse_rates_csv, rates_csv

PRICE_LIST = """destination,prefixes,call_class,price_per_minute,reduced_price_per_minute,connect_fee,cost_per_minute
Local,,local,0.12,0.06,0.05,0.03
Mobile VC1,,vc1,0.60,0.40,0.05,0.30
Long distance,,long_distance,0.30,,0.05,
Portugal,351,,1.20,,0.10,0.80
Portugal mobile,3519,,1.80,,0.10,1.10
"""


def test_a_tariff_csv_round_trips() -> None:
    entries = parse_rates_csv(PRICE_LIST)
    assert [e.destination for e in entries] == ["Local", "Mobile VC1", "Long distance", "Portugal", "Portugal mobile"]
    assert entries[0].rate.reduced_price_per_minute == Decimal("0.06")
    assert entries[3].prefixes == ("351",)
    assert parse_rates_csv(rates_csv(entries)) == entries


def test_bad_rows_are_reported_with_their_line_numbers() -> None:
    text = "destination;prefixes;call_class;price_per_minute\nLocal;;local;0,12\nBad;;planet;abc\n;55x;;1\n"
    with pytest.raises(TariffFileInvalid) as caught:
        parse_rates_csv(text)
    fields = [p.field for p in caught.value.problems]
    assert fields == [
        "line 3: call_class",
        "line 3: price_per_minute",
        "line 4: destination",
        "line 4: prefixes",
    ]
    assert "'abc' is not a number" in caught.value.problems[1].problem


def test_an_unknown_column_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(TariffFileInvalid, match="unknown column"):
        parse_rates_csv("destination,price_per_minute,colour\nx,1,red\n")


NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def book() -> PlanBook:
    plans = PlanBook()
    plans.add(TariffPlan("standard", NOV, parse_rates_csv(PRICE_LIST)))
    plans.add(TariffPlan("standard", DEC, parse_rates_csv(PRICE_LIST.replace("0.12,0.06", "0.10,0.05"))))
    plans.add(TariffPlan("vip", NOV, parse_rates_csv(PRICE_LIST.replace("0.12,0.06", "0.01,0.01"))))
    plans.assign("tenant", "*", "standard")
    plans.assign("customer", "cust-vip", "vip")
    return plans


def call(dialled: str, seconds: int, when: datetime, direction: str = "outbound") -> CallToRate:
    return CallToRate("r1", when, when.replace(tzinfo=None), direction, True, seconds, dialled, "2001")


MONDAY_NOON_NOV = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MONDAY_NOON_DEC = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SP = NumberingPlan(home_area_code="11")
DESK = DirectoryEntry("2001", line_id="line-1", customer_id="cust-1", cost_centre="sales")


def test_the_plan_version_in_force_when_the_call_started_prices_it() -> None:
    before = rate_call(call("33334444", 60, MONDAY_NOON_NOV), DESK, book(), SP)
    after = rate_call(call("33334444", 60, MONDAY_NOON_DEC), DESK, book(), SP)
    assert isinstance(before, Rating) and isinstance(after, Rating)
    assert (before.price.amount, after.price.amount) == (Decimal("0.17"), Decimal("0.15"))
    assert before.price.cost_amount == Decimal("0.03")


def test_assignment_falls_back_from_line_to_customer_to_tenant() -> None:
    plans = book()
    vip = DirectoryEntry("2002", line_id="line-2", customer_id="cust-vip")
    assert isinstance(r := rate_call(call("33334444", 60, MONDAY_NOON_NOV), vip, plans, SP), Rating)
    assert (r.plan, r.price.amount) == ("vip", Decimal("0.06"))
    plans.assign("line", "line-2", "standard")
    assert isinstance(r := rate_call(call("33334444", 60, MONDAY_NOON_NOV), vip, plans, SP), Rating)
    assert (r.plan, r.price.amount) == ("standard", Decimal("0.17"))


def test_the_longest_destination_prefix_beats_the_call_class() -> None:
    rating = rate_call(call("00 21 351 912345678", 60, MONDAY_NOON_NOV), DESK, book(), SP)
    assert isinstance(rating, Rating)
    assert (rating.destination, rating.call_class, rating.price.amount) == (
        "Portugal mobile",
        CallClass.INTERNATIONAL,
        Decimal("1.90"),
    )


def test_an_unknown_extension_or_a_missing_rate_leaves_the_call_unrated_with_the_reason() -> None:
    unknown = rate_call(call("33334444", 60, MONDAY_NOON_NOV), None, book(), SP)
    assert isinstance(unknown, Unratable) and unknown.reason == UNKNOWN_EXTENSION
    no_rate = rate_call(call("0 21 21 987654321", 60, MONDAY_NOON_NOV), DESK, book(), SP)  # VC3 is not priced
    assert isinstance(no_rate, Unratable) and no_rate.reason == NO_TARIFF
    assert "vc3" in no_rate.detail
    before_any_plan = rate_call(call("33334444", 60, datetime(2026, 10, 1, tzinfo=UTC)), DESK, book(), SP)
    assert isinstance(before_any_plan, Unratable) and before_any_plan.reason == NO_TARIFF


def test_a_call_outside_the_extension_class_is_rated_and_flagged() -> None:
    lobby = DirectoryEntry("2003", line_id="line-3", allowed_classes=frozenset({CallClass.LOCAL}))
    local = rate_call(call("33334444", 60, MONDAY_NOON_NOV), lobby, book(), SP)
    mobile = rate_call(call("987654321", 60, MONDAY_NOON_NOV), lobby, book(), SP)
    assert isinstance(local, Rating) and isinstance(mobile, Rating)
    assert (local.out_of_class, mobile.out_of_class) == (False, True)
    assert mobile.price.amount == Decimal("0.65")


def test_inbound_calls_cost_nothing_and_need_no_tariff() -> None:
    rating = rate_call(call("33334444", 600, MONDAY_NOON_NOV, "inbound"), DESK, PlanBook(), SP)
    assert isinstance(rating, Rating)
    assert (rating.call_class, rating.price.amount) == (CallClass.INBOUND, Decimal(0))
