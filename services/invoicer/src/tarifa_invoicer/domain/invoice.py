"""How an invoice is computed: lines exact to the cent, tax per VAT category, totals (EN 16931).

Rounding, decided once for every document we emit:
- A line's net amount (BT-131) is rounded half-up to the cent from its unrounded amount
  (usage lines sum the unrounded call amounts first, so a thousand 0.004 calls bill 4.00, not 0).
- Tax is computed per VAT category and rate on the sum of the rounded line net amounts
  (BT-116), and rounded once (BT-117); the invoice tax (BT-110) is the sum of the categories.
  EN 16931 defines BT-117 that way (rule BR-CO-17) and the Peppol validators check it, so a
  per-line rounding of tax would be rejected as soon as the per-line errors add up past a cent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from tarifa_common.errors import InvalidInput

CENT = Decimal("0.01")
ZERO = Decimal("0")
HUNDRED = Decimal("100")


def to_cents(amount: Decimal) -> Decimal:
    """Round half-up to the cent: the one place an amount is rounded."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class LineKind(StrEnum):
    RECURRING = "recurring"
    ONE_OFF = "one_off"
    USAGE = "usage"
    ALLOWANCE = "allowance"
    ADJUSTMENT = "adjustment"


class TaxCategory(StrEnum):
    """UNCL5305 codes EN 16931 uses: S standard rate, E exempt."""

    STANDARD = "S"
    EXEMPT = "E"


class TaxTreatment(StrEnum):
    """How a customer is taxed: exempt (rate 0, Comtrafic's 'Taux 0'), the tenant's rate, or its own."""

    EXEMPT = "exempt"
    DEFAULT = "default"
    SPECIFIC = "specific"


@dataclass(frozen=True, slots=True)
class Tax:
    category: TaxCategory
    rate: Decimal  # percent, e.g. Decimal("20")

    @staticmethod
    def for_customer(
        treatment: TaxTreatment, default_rate: Decimal, specific_rate: Decimal | None, product_rate: Decimal | None
    ) -> Tax:
        """The tax of a line: exempt customers pay none; else the product's rate, the customer's, the tenant's."""
        if treatment is TaxTreatment.EXEMPT:
            return Tax(TaxCategory.EXEMPT, ZERO)
        if product_rate is not None:
            rate = product_rate
        elif treatment is TaxTreatment.SPECIFIC:
            if specific_rate is None:
                raise InvalidInput("tax_rate", "a customer with tax treatment 'specific' needs a tax_rate")
            rate = specific_rate
        else:
            rate = default_rate
        if rate < 0 or rate > HUNDRED:
            raise InvalidInput("tax_rate", f"must be between 0 and 100 percent, got {rate}")
        return Tax(TaxCategory.STANDARD, rate)


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line: `amount` is unrounded; `net` is what the document shows (BT-131)."""

    kind: LineKind
    description: str
    amount: Decimal
    tax: Tax
    quantity: Decimal = Decimal("1")
    calls: int = 0
    seconds: int = 0
    call_class: str | None = None
    line_id: str | None = None

    @property
    def net(self) -> Decimal:
        return to_cents(self.amount)

    @property
    def unit_price(self) -> Decimal:
        """BT-146, never negative (BR-27): a credit line has a negative quantity instead."""
        return abs(self.net / self.quantity) if self.quantity else ZERO


@dataclass(frozen=True, slots=True)
class TaxSubtotal:
    tax: Tax
    taxable: Decimal  # BT-116, sum of line nets
    amount: Decimal  # BT-117, rounded once


@dataclass(frozen=True, slots=True)
class Totals:
    net: Decimal  # BT-106 / BT-109
    tax: Decimal  # BT-110
    total: Decimal  # BT-112 / BT-115
    subtotals: tuple[TaxSubtotal, ...]


def compute_totals(lines: Iterable[InvoiceLine]) -> Totals:
    """Totals of an invoice, exact to the cent, with tax per category and rate (see module doc)."""
    taxable: dict[Tax, Decimal] = {}
    for line in lines:
        taxable[line.tax] = taxable.get(line.tax, ZERO) + line.net
    subtotals = tuple(
        TaxSubtotal(tax, base, to_cents(base * tax.rate / HUNDRED))
        for tax, base in sorted(taxable.items(), key=lambda item: (item[0].category, item[0].rate))
    )
    net = sum((s.taxable for s in subtotals), ZERO)
    tax = sum((s.amount for s in subtotals), ZERO)
    return Totals(net=to_cents(net), tax=to_cents(tax), total=to_cents(net + tax), subtotals=subtotals)


@dataclass(frozen=True, slots=True)
class Period:
    """A billing period, first and last day included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidInput("period", f"ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @staticmethod
    def month(text: str) -> Period:
        """`2026-10` → 1 to 31 October 2026."""
        try:
            year, month = (int(part) for part in text.split("-"))
            start = date(year, month, 1)
        except ValueError as error:
            raise InvalidInput("period", f"expected YYYY-MM such as 2026-10, got {text!r}") from error
        following = date(year + (month == 12), month % 12 + 1, 1)
        return Period(start, date.fromordinal(following.toordinal() - 1))

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"


def overlap_days(period: Period, start: date | None, end: date | None) -> int:
    """Days of `period` within [start, end] (open ends allowed)."""
    first = max(period.start, start) if start else period.start
    last = min(period.end, end) if end else period.end
    return max(0, (last - first).days + 1)


@dataclass(frozen=True, slots=True)
class Charge:
    """A recurring or one-off product on a contract or on one of its lines."""

    description: str
    amount: Decimal
    recurring: bool
    starts_on: date
    ends_on: date | None = None
    tax_rate: Decimal | None = None  # overrides the customer's rate (mixed rates on one invoice)
    line_id: str | None = None
    line_ended_on: date | None = None  # a charge on a line ends with its line


def charge_lines(period: Period, charges: Sequence[Charge], tax_of: TaxOf) -> list[InvoiceLine]:
    """Recurring charges prorated by day of service; one-off charges billed in the period they fall in.

    Proration: a recurring charge active for only part of the period (a contract started on the
    15th, a line cancelled on the 10th) bills amount x days active / days in period, so the
    first and last invoices are fair and a change of plan mid-month needs no manual credit.
    """
    lines: list[InvoiceLine] = []
    for charge in charges:
        tax = tax_of(charge.tax_rate)
        if charge.recurring:
            end = min(d for d in (charge.ends_on, charge.line_ended_on, period.end) if d is not None)
            days = overlap_days(period, charge.starts_on, end)
            if days == 0:
                continue
            description = charge.description
            amount = charge.amount
            if days < period.days:
                amount = charge.amount * days / period.days
                description = f"{charge.description} ({days}/{period.days} days)"
            lines.append(InvoiceLine(LineKind.RECURRING, description, amount, tax, line_id=charge.line_id))
        elif period.start <= charge.starts_on <= period.end:
            lines.append(InvoiceLine(LineKind.ONE_OFF, charge.description, charge.amount, tax, line_id=charge.line_id))
    return lines


class TaxOf:
    """The tax of a line given an optional product rate, for one customer."""

    def __init__(self, treatment: TaxTreatment, default_rate: Decimal, specific_rate: Decimal | None) -> None:
        self.treatment, self.default_rate, self.specific_rate = treatment, default_rate, specific_rate

    def __call__(self, product_rate: Decimal | None = None) -> Tax:
        return Tax.for_customer(self.treatment, self.default_rate, self.specific_rate, product_rate)


@dataclass(frozen=True, slots=True)
class ClassUsage:
    """Usage of one call class in the period: calls counted once, re-rate deltas included."""

    call_class: str
    calls: int
    seconds: int
    amount: Decimal  # unrounded
    adjustment: bool = False  # re-rate differences of calls already invoiced


def usage_lines(usage: Sequence[ClassUsage], allowance: Decimal, tax: Tax) -> list[InvoiceLine]:
    """Usage per call class with counts and minutes, then the allowance the plan includes.

    The allowance (a monetary franchise) is shown as a negative line capped at the usage, so what
    remains of the usage lines is the overage: an additional telephony charge on the contract.
    """
    lines: list[InvoiceLine] = []
    total = ZERO
    for item in sorted(usage, key=lambda u: (u.adjustment, u.call_class)):
        if item.calls == 0 and item.amount == 0:
            continue
        minutes = (Decimal(item.seconds) / 60).quantize(CENT, rounding=ROUND_HALF_UP)
        if item.adjustment:
            description = f"Re-rating adjustments, {item.call_class} calls of earlier periods"
        else:
            description = f"Calls {item.call_class}: {item.calls} calls, {minutes} min"
        lines.append(
            InvoiceLine(
                LineKind.ADJUSTMENT if item.adjustment else LineKind.USAGE,
                description,
                item.amount,
                tax,
                quantity=Decimal("1") if item.amount >= 0 else Decimal("-1"),
                calls=item.calls,
                seconds=item.seconds,
                call_class=item.call_class,
            )
        )
        total += item.amount
    if allowance > 0 and total > 0:
        included = min(total, allowance)
        lines.append(
            InvoiceLine(LineKind.ALLOWANCE, "Usage included in the plan", -included, tax, quantity=Decimal("-1"))
        )
    return lines


class InvoiceKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


@dataclass(frozen=True, slots=True)
class Draft:
    """An invoice before it gets a number: lines and totals."""

    contract_id: str
    customer_id: str
    period: Period
    lines: tuple[InvoiceLine, ...]
    totals: Totals = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "totals", compute_totals(self.lines))


def invoice_number(series: str, sequence: int) -> str:
    """`F2026-000123`: the series then the gap-free sequence, zero-padded so numbers sort."""
    return f"{series}-{sequence:06d}"


def lines_to_credit(
    lines: Sequence[InvoiceLine], numbers: Sequence[int], already_credited: Iterable[int]
) -> tuple[InvoiceLine, ...]:
    """The lines of an invoice (numbered from 1, as on the documents) that a partial credit note repeats.

    A line is credited at most once, whole, as issued: a credit of part of a line is an amount.
    """
    if not numbers:
        raise InvalidInput("lines", "name at least one line number to credit")
    credited = set(already_credited)
    seen: set[int] = set()
    for number in numbers:
        if not 1 <= number <= len(lines):
            raise InvalidInput("lines", f"line {number} does not exist: the invoice has lines 1 to {len(lines)}")
        if number in credited:
            raise InvalidInput("lines", f"line {number} has already been credited")
        if number in seen:
            raise InvalidInput("lines", f"line {number} is named twice")
        seen.add(number)
    return tuple(lines[number - 1] for number in sorted(numbers))


def amount_to_credit(
    lines: Sequence[InvoiceLine], credited: Sequence[InvoiceLine], amount: Decimal, reference: str
) -> tuple[InvoiceLine, ...]:
    """Credit lines for a net `amount` of an invoice, spread over what remains of its VAT categories' bases.

    `credited` are the lines of the invoice's earlier credit notes. Spreading in proportion to
    each category's remaining base keeps the VAT credited to what was charged and not yet
    credited (a credit cannot move tax from one rate to another); the cents are allocated by
    largest remainder, so the lines add up to `amount` exactly.
    """
    if amount != to_cents(amount) or amount <= 0:
        raise InvalidInput("amount", f"a credit is a positive amount in cents, got {amount}")
    bases: dict[Tax, Decimal] = {}
    for line in lines:
        bases[line.tax] = bases.get(line.tax, ZERO) + line.net
    for line in credited:
        bases[line.tax] = bases.get(line.tax, ZERO) - line.net
    remaining = sum((base for base in bases.values() if base > 0), ZERO)
    if amount > remaining:
        raise InvalidInput("amount", f"{amount} is more than what remains to credit on {reference} ({remaining})")
    positive = sorted(
        ((tax, base) for tax, base in bases.items() if base > 0), key=lambda i: (i[0].category, i[0].rate)
    )
    if not positive:
        raise InvalidInput("amount", f"{reference} has nothing to credit")
    whole = sum((base for _, base in positive), ZERO)
    shares = [(tax, amount * base / whole) for tax, base in positive]
    cents = [(tax, share.quantize(CENT, rounding="ROUND_DOWN"), share) for tax, share in shares]
    left = int((amount - sum((c for _, c, _ in cents), ZERO)) / CENT)
    order = sorted(range(len(cents)), key=lambda i: cents[i][2] - cents[i][1], reverse=True)
    allocated = {i: cents[i][1] + (CENT if rank < left else ZERO) for rank, i in enumerate(order)}
    several = len(cents) > 1
    return tuple(
        InvoiceLine(
            LineKind.ADJUSTMENT,
            f"Partial credit of {reference}" + (f" ({tax.rate.normalize():f} % VAT)" if several else ""),
            allocated[i],
            tax,
        )
        for i, (tax, _, _) in enumerate(cents)
        if allocated[i] > 0
    )
