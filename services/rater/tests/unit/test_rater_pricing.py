"""Pricing under the Brazilian conventions: hand-computed prices, bands, and the properties that always hold."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa_rater.domain.money import round_money
from tarifa_rater.domain.pricing import Band, Price, Rate, TimeBands, charged_seconds, price_call

LOCAL = Rate("local", Decimal("0.12"), reduced_price_per_minute=Decimal("0.06"), connect_fee=Decimal("0.05"))


@pytest.mark.parametrize(
    ("billable", "answered", "band", "charged", "amount"),
    [
        (0, True, Band.NORMAL, 0, "0"),
        (2, True, Band.NORMAL, 0, "0"),  # under 3 s: free
        (3, True, Band.NORMAL, 30, "0.11"),  # exactly 3 s is charged by default: 0.05 + 0.12 * 30/60
        (29, True, Band.NORMAL, 30, "0.11"),
        (30, True, Band.NORMAL, 30, "0.11"),  # the 30 s minimum
        (31, True, Band.NORMAL, 36, "0.122"),  # 30 + one 6 s step: 0.05 + 0.12 * 36/60
        (36, True, Band.NORMAL, 36, "0.122"),
        (60, True, Band.NORMAL, 60, "0.17"),
        (61, True, Band.NORMAL, 66, "0.182"),
        (125, True, Band.NORMAL, 126, "0.302"),  # 30 + 16 steps of 6 s = 126 s
        (60, True, Band.REDUCED, 60, "0.11"),  # reduced band: 0.05 + 0.06
        (125, True, Band.REDUCED, 126, "0.176"),  # 0.05 + 0.06 * 126/60
        (100, False, Band.NORMAL, 0, "0"),  # unanswered: free
    ],
)
def test_brazilian_local_rate_prices_by_hand(
    billable: int, answered: bool, band: Band, charged: int, amount: str
) -> None:
    price = price_call(billable, answered, band, LOCAL)
    assert price.charged_seconds == charged
    assert price.amount == Decimal(amount)


def test_exactly_three_seconds_is_free_when_the_setting_says_so() -> None:
    rate = Rate("local", Decimal("0.12"), free_inclusive=True)
    assert price_call(3, True, Band.NORMAL, rate).amount == 0
    assert price_call(4, True, Band.NORMAL, rate).amount == Decimal("0.06")


def test_minimum_charge_lifts_a_short_call() -> None:
    rate = Rate("premium", Decimal("0.12"), connect_fee=Decimal("0.05"), minimum_charge=Decimal("0.20"))
    assert price_call(30, True, Band.NORMAL, rate).amount == Decimal("0.20")
    assert price_call(120, True, Band.NORMAL, rate).amount == Decimal("0.29")  # 0.05 + 0.24, above the minimum


def test_per_second_billing_keeps_an_unrounded_amount_and_rounds_once_at_the_end() -> None:
    rate = Rate("per-second", Decimal("0.10"), first_increment=1, next_increment=1, free_seconds=0)
    price = price_call(31, True, Band.NORMAL, rate)
    assert price.amount == Decimal("0.051666666667")  # 0.10 * 31 / 60, carried to 12 decimals
    three_calls = price.amount * 3
    assert round_money(three_calls, "BRL") == Decimal("0.16")  # 0.155 rounds half-up once, not 3 x 0.05


def test_cost_price_is_priced_on_the_same_charged_seconds() -> None:
    rate = Rate("vc1", Decimal("0.50"), cost_per_minute=Decimal("0.20"))
    price = price_call(61, True, Band.NORMAL, rate)
    assert (price.charged_seconds, price.amount, price.cost_amount) == (66, Decimal("0.55"), Decimal("0.22"))


def test_round_money_is_half_up_per_currency() -> None:
    assert round_money(Decimal("0.125"), "BRL") == Decimal("0.13")
    assert round_money(Decimal("0.124999"), "BRL") == Decimal("0.12")
    assert round_money(Decimal("10.5"), "JPY") == Decimal("11")


BANDS = TimeBands(holidays=frozenset({date(2026, 11, 20)}))


@pytest.mark.parametrize(
    ("local_start", "band"),
    [
        (datetime(2026, 11, 23, 6, 59, 59), Band.REDUCED),  # Monday before 07:00
        (datetime(2026, 11, 23, 7, 0, 0), Band.NORMAL),
        (datetime(2026, 11, 23, 20, 59, 59), Band.NORMAL),
        (datetime(2026, 11, 23, 21, 0, 0), Band.REDUCED),
        (datetime(2026, 11, 21, 10, 0, 0), Band.NORMAL),  # Saturday daytime
        (datetime(2026, 11, 22, 10, 0, 0), Band.REDUCED),  # Sunday
        (datetime(2026, 11, 20, 10, 0, 0), Band.REDUCED),  # a Friday holiday of the tenant
    ],
)
def test_time_band_by_weekday_hour_and_holiday(local_start: datetime, band: Band) -> None:
    assert BANDS.band_at(local_start) is band


def test_a_call_crossing_into_the_reduced_band_is_priced_in_the_band_it_started() -> None:
    band = BANDS.band_at(datetime(2026, 11, 23, 20, 59, 30))  # five minutes, ending 21:04:30
    price = price_call(300, True, band, LOCAL)
    assert price.band is Band.NORMAL
    assert price.amount == Decimal("0.65")  # 0.05 + 0.12 * 5, all at the normal price


rates = st.builds(
    Rate,
    name=st.just("r"),
    price_per_minute=st.decimals(min_value=0, max_value=10, places=4),
    connect_fee=st.decimals(min_value=0, max_value=1, places=2),
    first_increment=st.integers(1, 60),
    next_increment=st.integers(1, 60),
    minimum_charge=st.decimals(min_value=0, max_value=1, places=2),
    free_seconds=st.integers(0, 10),
    free_inclusive=st.booleans(),
)


@given(rate=rates, seconds=st.integers(0, 20_000), more=st.integers(0, 5_000))
def test_price_never_decreases_with_duration(rate: Rate, seconds: int, more: int) -> None:
    shorter = price_call(seconds, True, Band.NORMAL, rate)
    longer = price_call(seconds + more, True, Band.NORMAL, rate)
    assert longer.amount >= shorter.amount
    assert longer.charged_seconds >= shorter.charged_seconds


@given(rate=rates, seconds=st.integers(0, 10))
def test_calls_below_the_free_threshold_cost_nothing(rate: Rate, seconds: int) -> None:
    if seconds < rate.free_seconds:
        assert price_call(seconds, True, Band.NORMAL, rate).amount == 0


@given(rate=rates, seconds=st.integers(0, 20_000))
def test_charged_seconds_are_the_minimum_plus_whole_increments(rate: Rate, seconds: int) -> None:
    charged = charged_seconds(seconds, rate)
    if charged:
        assert charged >= seconds
        assert charged >= rate.first_increment
        assert (charged - rate.first_increment) % rate.next_increment == 0
        assert charged - seconds < max(rate.first_increment, rate.next_increment)


def test_the_tenant_s_holidays_given_with_the_call_make_the_day_reduced() -> None:
    monday_noon = datetime(2026, 11, 23, 12, 0)
    assert TimeBands().band_at(monday_noon) is Band.NORMAL
    assert TimeBands().band_at(monday_noon, frozenset({date(2026, 11, 23)})) is Band.REDUCED


@given(seconds=st.integers(min_value=0, max_value=7200), answered=st.booleans())
def test_the_price_memo_returns_exactly_what_pricing_computes(seconds: int, answered: bool) -> None:
    memo: dict[tuple[int, int], Price] = {}
    for band in (Band.NORMAL, Band.REDUCED):
        first = price_call(seconds, answered, band, LOCAL, memo)
        assert first == price_call(seconds, answered, band, LOCAL)
        assert price_call(seconds, answered, band, LOCAL, memo) is first
