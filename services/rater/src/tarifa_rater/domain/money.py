"""Money: exact Decimals, rounded once, half-up, to the currency's minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units of the currencies we bill in; unknown currencies default to cents.
MINOR_UNITS: dict[str, int] = {"BRL": 2, "USD": 2, "EUR": 2, "ARS": 2, "CLP": 0, "JPY": 0, "PYG": 0, "KWD": 3}
# Per-call amounts are exact whenever the price divides; a per-second quotient that does not
# terminate (R$ 0.10/min for 31 s) is carried to 12 decimals, far below any rounding that matters.
STORED = Decimal("0.000000000001")
STORED_PLACES = -12
ZERO = Decimal(0)


def exact(amount: Decimal) -> Decimal:
    """The stored, unrounded amount: exact, or carried to 12 decimals when the quotient does not end."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < STORED_PLACES:
        return amount.quantize(STORED, rounding=ROUND_HALF_UP)
    return amount


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round once, at the end (a total, an invoice line), half-up, to the currency's minor unit."""
    places = MINOR_UNITS.get(currency.upper(), 2)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
