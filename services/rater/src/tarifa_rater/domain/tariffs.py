"""Tariff plans: rates by destination prefix or call class, activation dates, assignment with fallback.

A plan (`code`) has versions; each version has a `valid_from`, so a new price list is loaded
ahead of time and takes over at its activation. A call is priced by the version in force when
it started. Plans are assigned to a line (extension), a customer or the tenant; the most
specific assignment wins (line, then customer, then tenant).

Within a plan, the rate of the longest matching destination prefix wins; a call whose number
matches no prefix takes the rate of its call class (the usual Brazilian price list is just
local / VC1 / VC2 / VC3 / long distance / international).
"""

from __future__ import annotations

import bisect
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from tarifa_common.errors import FieldProblem, InvalidInput
from tarifa_rater.domain.destinations import PrefixTable
from tarifa_rater.domain.numbering import CallClass, Classified
from tarifa_rater.domain.pricing import PriceMemo, Rate, TimeBands

CSV_COLUMNS = (
    "destination",
    "prefixes",
    "call_class",
    "price_per_minute",
    "reduced_price_per_minute",
    "connect_fee",
    "cost_per_minute",
    "first_increment",
    "next_increment",
    "minimum_charge",
    "free_seconds",
    "free_inclusive",
)


@dataclass(frozen=True, slots=True)
class RateEntry:
    """A destination (prefixes, or a whole call class) and its rate."""

    destination: str
    rate: Rate
    prefixes: tuple[str, ...] = ()
    call_class: CallClass | None = None


class TariffPlan:
    """One version of a plan, compiled for fast lookup."""

    __slots__ = ("_classes", "_prefixes", "bands", "code", "currency", "entries", "memo", "valid_from")

    def __init__(
        self,
        code: str,
        valid_from: datetime,
        entries: Sequence[RateEntry],
        *,
        currency: str = "BRL",
        bands: TimeBands | None = None,
    ) -> None:
        if valid_from.tzinfo is None:
            raise InvalidInput("valid_from", "must carry a time zone")
        self.code = code
        self.valid_from = valid_from
        self.currency = currency
        self.entries = tuple(entries)
        self.bands = bands or TimeBands()
        self._prefixes: PrefixTable[RateEntry] = PrefixTable(
            (prefix, entry) for entry in self.entries for prefix in entry.prefixes
        )
        self.memo: PriceMemo = {}  # prices by rate identity and duration; rates live as long as the plan
        self._classes = {entry.call_class: entry for entry in self.entries if entry.call_class and not entry.prefixes}

    def find(self, number: Classified) -> RateEntry | None:
        """The rate for a classified number: longest prefix first, else its call class."""
        if number.e164 is not None:
            found = self._prefixes.lookup(number.e164)
            if found is not None:
                return found
        return self._classes.get(number.call_class)


@dataclass(slots=True)
class PlanBook:
    """A tenant's plans (every version) and their assignments, resolved per call."""

    versions: dict[str, list[TariffPlan]] = field(default_factory=dict)
    starts: dict[str, list[datetime]] = field(default_factory=dict)
    assignments: dict[tuple[str, str], str] = field(default_factory=dict)  # (scope, id) -> plan code
    by_scope: dict[str, dict[str, str]] = field(default_factory=dict)  # the same, scope -> id -> plan code

    # (line id, customer id) -> the versions of the plan assigned, resolved once (cleared on change)
    resolved: dict[tuple[str | None, str | None], tuple[list[datetime], list[TariffPlan]] | None] = field(
        default_factory=dict
    )

    def add(self, plan: TariffPlan) -> None:
        versions = self.versions.setdefault(plan.code, [])
        versions.append(plan)
        versions.sort(key=lambda p: p.valid_from)
        self.starts[plan.code] = [p.valid_from for p in versions]
        self.resolved.clear()

    def assign(self, scope: str, scope_id: str, code: str) -> None:
        self.assignments[(scope, scope_id)] = code
        self.by_scope.setdefault(scope, {})[scope_id] = code
        self.resolved.clear()

    def plan_for(self, started_at: datetime, *, line_id: str | None, customer_id: str | None) -> TariffPlan | None:
        """The plan version in force at `started_at` for the line, else its customer, else the tenant."""
        key = (line_id, customer_id)
        try:
            found = self.resolved[key]
        except KeyError:
            code = self.code_for(line_id, customer_id)
            found = None if code is None or not self.starts.get(code) else (self.starts[code], self.versions[code])
            if len(self.resolved) >= 100_000:
                self.resolved.clear()
            self.resolved[key] = found
        if found is None:
            return None
        starts, versions = found
        if len(starts) == 1:
            return versions[0] if started_at >= starts[0] else None
        index = bisect.bisect_right(starts, started_at)
        return versions[index - 1] if index else None

    def code_for(self, line_id: str | None, customer_id: str | None) -> str | None:
        """The plan code assigned to the line, else its customer, else the tenant."""
        by_scope = self.by_scope
        code = None
        if line_id is not None and "line" in by_scope:
            code = by_scope["line"].get(line_id)
        if code is None and customer_id is not None and "customer" in by_scope:
            code = by_scope["customer"].get(customer_id)
        if code is None and "tenant" in by_scope:
            code = by_scope["tenant"].get("*")
        return code

    def version_at(self, code: str, started_at: datetime) -> TariffPlan | None:
        starts = self.starts.get(code)
        if not starts:
            return None
        index = bisect.bisect_right(starts, started_at)
        return self.versions[code][index - 1] if index else None


class TariffFileInvalid(InvalidInput):
    """A tariff CSV with bad rows; every problem names its line and column."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        summary = "; ".join(f"{p.field}: {p.problem}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super(InvalidInput, self).__init__(
            f"the tariff file has {len(problems)} bad value(s): {summary}{more}", problems=problems
        )


def _decimal(value: str, where: str, problems: list[FieldProblem], *, required: bool) -> Decimal | None:
    text = value.strip()
    if not text:
        if required:
            problems.append(FieldProblem(where, "is required"))
        return None
    try:
        amount = Decimal(text.replace(",", ".")) if text.count(",") == 1 and "." not in text else Decimal(text)
    except InvalidOperation:
        problems.append(FieldProblem(where, f"{text!r} is not a number (write 0.12)"))
        return None
    if not amount.is_finite() or amount < 0:
        problems.append(FieldProblem(where, f"{text!r} must be zero or more"))
        return None
    return amount


def _int(value: str, where: str, default: int, problems: list[FieldProblem], *, minimum: int) -> int:
    text = value.strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < minimum:
        problems.append(FieldProblem(where, f"{text!r} must be a whole number of seconds, at least {minimum}"))
        return default
    return int(text)


def parse_rates_csv(text: str) -> list[RateEntry]:
    """Read a tariff table (header `CSV_COLUMNS`, `;` or `,` separated); raise with every bad line."""
    sample = text[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [name for name in ("destination", "price_per_minute") if name not in header]
    if missing:
        raise TariffFileInvalid([FieldProblem("line 1", f"the header lacks column(s) {', '.join(missing)}")])
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown:
        raise TariffFileInvalid(
            [FieldProblem("line 1", f"unknown column(s) {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}")]
        )
    problems: list[FieldProblem] = []
    entries: list[RateEntry] = []
    for row in reader:
        line = reader.line_num
        values = {(k or "").strip(): (v or "") for k, v in row.items()}
        before = len(problems)
        destination = values.get("destination", "").strip()
        if not destination:
            problems.append(FieldProblem(f"line {line}: destination", "is required"))
        prefixes = tuple(p for p in values.get("prefixes", "").replace(",", " ").split() if p)
        for prefix in prefixes:
            if not prefix.isdigit():
                problems.append(FieldProblem(f"line {line}: prefixes", f"{prefix!r} must be digits (E.164, no '+')"))
        class_text = values.get("call_class", "").strip().lower()
        call_class: CallClass | None = None
        if class_text:
            try:
                call_class = CallClass(class_text)
            except ValueError:
                known = ", ".join(c.value for c in CallClass)
                problems.append(FieldProblem(f"line {line}: call_class", f"{class_text!r} is not one of {known}"))
        if not prefixes and not class_text:
            problems.append(FieldProblem(f"line {line}: prefixes", "give prefixes or a call_class"))
        price = _decimal(values.get("price_per_minute", ""), f"line {line}: price_per_minute", problems, required=True)
        reduced = _decimal(
            values.get("reduced_price_per_minute", ""),
            f"line {line}: reduced_price_per_minute",
            problems,
            required=False,
        )
        fee = _decimal(values.get("connect_fee", ""), f"line {line}: connect_fee", problems, required=False)
        cost = _decimal(values.get("cost_per_minute", ""), f"line {line}: cost_per_minute", problems, required=False)
        minimum = _decimal(values.get("minimum_charge", ""), f"line {line}: minimum_charge", problems, required=False)
        first = _int(values.get("first_increment", ""), f"line {line}: first_increment", 30, problems, minimum=1)
        step = _int(values.get("next_increment", ""), f"line {line}: next_increment", 6, problems, minimum=1)
        free = _int(values.get("free_seconds", ""), f"line {line}: free_seconds", 3, problems, minimum=0)
        inclusive_text = values.get("free_inclusive", "").strip().lower()
        if inclusive_text not in ("", "true", "false", "yes", "no", "1", "0"):
            problems.append(FieldProblem(f"line {line}: free_inclusive", f"{inclusive_text!r} must be true or false"))
        if len(problems) > before or price is None:
            continue
        rate = Rate(
            name=destination,
            price_per_minute=price,
            reduced_price_per_minute=reduced,
            connect_fee=fee or Decimal(0),
            cost_per_minute=cost,
            first_increment=first,
            next_increment=step,
            minimum_charge=minimum or Decimal(0),
            free_seconds=free,
            free_inclusive=inclusive_text in ("true", "yes", "1"),
        )
        entries.append(RateEntry(destination, rate, prefixes, call_class))
    if problems:
        raise TariffFileInvalid(problems)
    if not entries:
        raise TariffFileInvalid([FieldProblem("line 2", "the file has no rates")])
    return entries


def _text(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def rates_csv(entries: Iterable[RateEntry]) -> str:
    """Write a tariff table in the format `parse_rates_csv` reads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        rate = entry.rate
        writer.writerow(
            [
                entry.destination,
                " ".join(entry.prefixes),
                entry.call_class.value if entry.call_class else "",
                rate.price_per_minute,
                _text(rate.reduced_price_per_minute),
                rate.connect_fee,
                _text(rate.cost_per_minute),
                rate.first_increment,
                rate.next_increment,
                rate.minimum_charge,
                rate.free_seconds,
                "true" if rate.free_inclusive else "false",
            ]
        )
    return out.getvalue()
