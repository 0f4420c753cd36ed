"""Cent-exact invoice totals: rounding, mixed rates, exempt customers, proration, usage and allowance."""

from datetime import date
from decimal import Decimal as D  # noqa: N817 - amounts read as D("0.05") in the tables of cases

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa_common.errors import InvalidInput
from tarifa_invoicer.domain.invoice import (
    Charge,
    ClassUsage,
    InvoiceLine,
    LineKind,
    Period,
    Tax,
    TaxCategory,
    TaxOf,
    TaxTreatment,
    amount_to_credit,
    charge_lines,
    compute_totals,
    usage_lines,
)

OCTOBER = Period.month("2026-10")
STANDARD_20 = Tax(TaxCategory.STANDARD, D("20"))


def test_many_small_lines_round_tax_once_per_category_not_per_line() -> None:
    # 100 lines of 0.05 at 20 %: per-line tax would be 100 x 0.01 = 1.00; per category it is 1.00 of 5.00.
    # 3 lines of 0.10 at 5.5 %: per-line 3 x 0.01 = 0.03; per category 0.30 x 5.5 % = 0.0165 -> 0.02.
    lines = [InvoiceLine(LineKind.ONE_OFF, "sms", D("0.05"), STANDARD_20) for _ in range(100)]
    lines += [InvoiceLine(LineKind.ONE_OFF, "fax", D("0.10"), Tax(TaxCategory.STANDARD, D("5.5"))) for _ in range(3)]
    totals = compute_totals(lines)
    assert totals.net == D("5.30")
    assert [(s.tax.rate, s.taxable, s.amount) for s in totals.subtotals] == [
        (D("5.5"), D("0.30"), D("0.02")),
        (D("20"), D("5.00"), D("1.00")),
    ]
    assert totals.tax == D("1.02")
    assert totals.total == D("6.32")


def test_usage_sums_unrounded_calls_before_rounding_the_line() -> None:
    usage = [ClassUsage("local", calls=1000, seconds=30_000, amount=D("0.004") * 1000)]
    (line,) = usage_lines(usage, allowance=D("0"), tax=STANDARD_20)
    assert line.net == D("4.00")
    assert line.description == "Calls local: 1000 calls, 500.00 min"
    assert compute_totals([line]).total == D("4.80")


def test_half_up_rounding_at_the_half_cent() -> None:
    line = InvoiceLine(LineKind.ONE_OFF, "x", D("10.005"), Tax(TaxCategory.STANDARD, D("10")))
    totals = compute_totals([line])
    assert (totals.net, totals.tax, totals.total) == (D("10.01"), D("1.00"), D("11.01"))


def test_exempt_customer_pays_no_tax_even_on_products_with_their_own_rate() -> None:
    tax_of = TaxOf(TaxTreatment.EXEMPT, D("20"), None)
    lines = charge_lines(
        OCTOBER,
        [
            Charge("Rental", D("49.90"), True, date(2026, 1, 1), tax_rate=D("10")),
            Charge("Phone", D("120"), False, date(2026, 10, 3)),
        ],
        tax_of,
    )
    totals = compute_totals(lines)
    assert {line.tax for line in lines} == {Tax(TaxCategory.EXEMPT, D("0"))}
    assert (totals.net, totals.tax, totals.total) == (D("169.90"), D("0.00"), D("169.90"))


def test_mixed_rates_on_one_invoice() -> None:
    tax_of = TaxOf(TaxTreatment.DEFAULT, D("20"), None)
    lines = charge_lines(
        OCTOBER,
        [
            Charge("Subscription", D("29.99"), True, date(2026, 1, 1)),
            Charge("Equipment rental", D("15.00"), True, date(2026, 1, 1), tax_rate=D("10")),
        ],
        tax_of,
    )
    totals = compute_totals(lines)
    assert [(s.tax.rate, s.taxable, s.amount) for s in totals.subtotals] == [
        (D("10"), D("15.00"), D("1.50")),
        (D("20"), D("29.99"), D("6.00")),
    ]
    assert totals.total == D("52.49")


def test_recurring_charge_is_prorated_by_days_and_ends_with_its_line() -> None:
    tax_of = TaxOf(TaxTreatment.SPECIFIC, D("20"), D("8.5"))
    lines = charge_lines(
        OCTOBER,
        [
            Charge("Subscription", D("31.00"), True, date(2026, 10, 15)),  # 17 of 31 days
            Charge("Line rental", D("10.00"), True, date(2026, 1, 1), line_id="l1", line_ended_on=date(2026, 10, 10)),
            Charge("Old rental", D("10.00"), True, date(2026, 1, 1), ends_on=date(2026, 9, 30)),
            Charge("Router", D("80.00"), False, date(2026, 9, 30)),  # one-off of another period
        ],
        tax_of,
    )
    assert [(line.description, line.net) for line in lines] == [
        ("Subscription (17/31 days)", D("17.00")),
        ("Line rental (10/31 days)", D("3.23")),
    ]
    assert all(line.tax == Tax(TaxCategory.STANDARD, D("8.5")) for line in lines)
    # 20.23 x 8.5 % = 1.71955 -> 1.72
    assert compute_totals(lines).total == D("21.95")


def test_allowance_leaves_only_the_overage_to_pay() -> None:
    usage = [
        ClassUsage("local", 10, 600, D("3.333333")),
        ClassUsage("mobile", 5, 300, D("12.500001")),
    ]
    lines = usage_lines(usage, allowance=D("10"), tax=STANDARD_20)
    assert [(line.kind, line.net) for line in lines] == [
        (LineKind.USAGE, D("3.33")),
        (LineKind.USAGE, D("12.50")),
        (LineKind.ALLOWANCE, D("-10.00")),
    ]
    assert compute_totals(lines).net == D("5.83")


def test_allowance_never_exceeds_usage() -> None:
    lines = usage_lines([ClassUsage("local", 1, 60, D("2.50"))], allowance=D("10"), tax=STANDARD_20)
    assert compute_totals(lines).net == D("0.00")


def test_zero_usage_contract_gets_no_usage_lines() -> None:
    assert usage_lines([], allowance=D("10"), tax=STANDARD_20) == []
    assert usage_lines([ClassUsage("local", 0, 0, D("0"))], allowance=D("0"), tax=STANDARD_20) == []
    assert compute_totals([]).total == D("0.00")


def test_specific_treatment_without_rate_names_the_field() -> None:
    with pytest.raises(InvalidInput) as error:
        TaxOf(TaxTreatment.SPECIFIC, D("20"), None)()
    assert error.value.problems[0].field == "tax_rate"


def test_period_month_rejects_nonsense_and_knows_february() -> None:
    assert Period.month("2028-02").days == 29
    assert Period.month("2026-12").end == date(2026, 12, 31)
    with pytest.raises(InvalidInput):
        Period.month("October")


@given(st.lists(st.tuples(st.integers(0, 10**8), st.sampled_from(["0", "5.5", "10", "20"])), max_size=60))
def test_totals_equal_net_plus_tax_and_tax_is_within_half_a_cent_per_category(items: list[tuple[int, str]]) -> None:
    lines = [
        InvoiceLine(LineKind.ONE_OFF, "p", D(units) / 10**6, Tax(TaxCategory.STANDARD, D(rate)))
        for units, rate in items
    ]
    totals = compute_totals(lines)
    assert totals.total == totals.net + totals.tax
    assert totals.net == sum((line.net for line in lines), D("0"))
    for subtotal in totals.subtotals:
        assert abs(subtotal.amount - subtotal.taxable * subtotal.tax.rate / 100) <= D("0.005")


@given(
    st.lists(st.tuples(st.integers(1, 10**6), st.sampled_from(["0", "5.5", "10", "20"])), min_size=1, max_size=8),
    st.integers(1, 10**8),
)
def test_a_credited_amount_is_spread_to_the_cent_and_never_over_a_category_base(
    items: list[tuple[int, str]], cents: int
) -> None:
    lines = [InvoiceLine(LineKind.ONE_OFF, "p", D(c) / 100, Tax(TaxCategory.STANDARD, D(rate))) for c, rate in items]
    net = compute_totals(lines).net
    amount = min(D(cents) / 100, net)
    credit = amount_to_credit(lines, [], amount, "F-000001")
    assert sum((line.net for line in credit), D("0")) == amount
    base = {s.tax: s.taxable for s in compute_totals(lines).subtotals}
    for line in credit:
        assert 0 < line.net <= base[line.tax]


def test_a_credit_after_another_only_spreads_over_what_remains() -> None:
    ten = Tax(TaxCategory.STANDARD, D("10"))
    lines = [InvoiceLine(LineKind.ONE_OFF, "a", D("30"), STANDARD_20), InvoiceLine(LineKind.ONE_OFF, "b", D("10"), ten)]
    earlier = [InvoiceLine(LineKind.ONE_OFF, "a", D("30"), STANDARD_20)]
    (line,) = amount_to_credit(lines, earlier, D("4.00"), "F-000001")
    assert (line.tax, line.net) == (ten, D("4.00"))
    with pytest.raises(InvalidInput) as error:
        amount_to_credit(lines, earlier, D("10.01"), "F-000001")
    assert error.value.problems[0].field == "amount"
