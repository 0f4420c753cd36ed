"""The Summit integration's rules: line fields, number ranges, partitions and the blocking policy."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from tarifa_common.contracts import ContractStatus, LineEventKind
from tarifa_common.errors import Conflict, InvalidInput, NotFound

ACCOUNT_CODE = re.compile(r"^[0-9]{6}$")
DIGITS = re.compile(r"^\+?[0-9]+$")
FIRST_DUE_DAY, LAST_DUE_DAY = 1, 25
MAIN_LINE_PORT = 1


class BidType(StrEnum):
    TERMINAL = "terminal"
    TRUNK = "trunk"


class ImportPeriod(StrEnum):
    DAILY = "daily"
    MONTHLY = "monthly"


SCHEDULE_FIELDS = (  # name, lowest, highest: cron's fields and bounds (weekday 0 = Sunday, 7 = Sunday too)
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day_of_month", 1, 31),
    ("month", 1, 12),
    ("day_of_week", 0, 7),
)
SCHEDULE_VALUE = re.compile(r"^(all|[0-9]{1,2}|[0-9]{1,2}-[0-9]{1,2})$")


@dataclass(frozen=True, slots=True)
class ImportSchedule:
    """When the CDR import runs, set like a cron entry: each field a value, a range 'a-b' or 'all'.

    Read in the collector source's time zone. The import period decides what the day fields
    mean: a daily import runs on every day of the month (the weekday may narrow it, e.g. 1-5);
    for a monthly import the day of the month wins over the weekday (Summit's monthly export is
    on a day of the month; cron would run on either), so the weekday is ignored.
    """

    minute: str = "0"
    hour: str = "3"
    day_of_month: str = "all"
    month: str = "all"
    day_of_week: str = "all"

    @classmethod
    def parse(cls, text: str) -> ImportSchedule:
        """From its stored form: the five fields separated by spaces."""
        return cls(*text.split())

    def stored(self) -> str:
        return " ".join(getattr(self, name) for name, _, _ in SCHEDULE_FIELDS)

    def checked(self, period: ImportPeriod) -> ImportSchedule:
        """The schedule, or InvalidInput naming the field (`import_schedule.<field>`) and the problem."""
        for name, low, high in SCHEDULE_FIELDS:
            value = getattr(self, name)
            field = f"import_schedule.{name}"
            if not SCHEDULE_VALUE.match(value):
                raise InvalidInput(field, f"{value!r} is not a value, a range 'a-b' or 'all'")
            if value == "all":
                continue
            first, _, last = value.partition("-")
            bounds = (int(first), int(last or first))
            if not all(low <= bound <= high for bound in bounds):
                raise InvalidInput(field, f"{value!r} is outside {low}-{high}")
            if bounds[0] > bounds[1]:
                raise InvalidInput(field, f"{value!r} runs backwards; write the lower bound first")
        if period is ImportPeriod.MONTHLY and self.day_of_month == "all":
            raise InvalidInput(
                "import_schedule.day_of_month", "a monthly import needs the day of the month it runs on, e.g. 1"
            )
        if period is ImportPeriod.DAILY and self.day_of_month != "all":
            raise InvalidInput(
                "import_schedule.day_of_month",
                "a daily import runs on every day of the month: use 'all' (narrow it with day_of_week), "
                "or make the import monthly",
            )
        return self

    def cron(self, period: ImportPeriod) -> str:
        """The five-field cron expression that runs this schedule, the period's rule applied."""
        fields = [getattr(self, name).replace("all", "*") for name, _, _ in SCHEDULE_FIELDS]
        if period is ImportPeriod.MONTHLY:
            fields[4] = "*"  # the day of the month wins over the weekday
        return " ".join(fields)


class CatalogueMode(StrEnum):
    """IXC's stable version keeps the catalogue locally; its beta lists it live from Summit."""

    LOCAL = "local"
    LIVE = "live"


class LineState(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    CANCELLED = "cancelled"


class OperationKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    CANCEL = "cancel"
    ADD_DID = "add_did"
    REMOVE_DID = "remove_did"


class OperationStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"


class NumberStatus(StrEnum):
    AVAILABLE = "available"
    IN_USE = "in_use"


class LineNotFound(NotFound):
    code = "line_not_found"


class NumberInUse(Conflict):
    code = "number_in_use"


def normalise_number(value: str, field_name: str) -> str:
    """Numbers are kept as E.164 digits without the plus (`551130001234`); spaces and dashes are dropped."""
    cleaned = re.sub(r"[\s\-().]", "", value)
    if not DIGITS.match(cleaned):
        raise InvalidInput(field_name, f"{value!r} is not a telephone number (digits only, optional leading +)")
    return cleaned.lstrip("+")


@dataclass(frozen=True, slots=True)
class NumberRange:
    """A block of numbers the operator received: DDI+DDD prefix, first and last subscriber number."""

    name: str
    prefix: str
    first: str
    last: str

    @staticmethod
    def checked(name: str, prefix: str, first: str, last: str) -> NumberRange:
        if not name.strip():
            raise InvalidInput("name", "must not be empty")
        if not prefix.isdigit():
            raise InvalidInput("prefix", "must be the DDI + DDD digits, such as 5511")
        if not first.isdigit():
            raise InvalidInput("first", "must be digits")
        if not last.isdigit():
            raise InvalidInput("last", "must be digits")
        if len(first) != len(last):
            raise InvalidInput("last", f"must have as many digits as first ({len(first)})")
        if int(last) < int(first):
            raise InvalidInput("last", "must not be below first")
        return NumberRange(name.strip(), prefix, first, last)

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def contains(self, number: str) -> bool:
        if not number.startswith(self.prefix):
            return False
        local = number[len(self.prefix) :]
        return len(local) == len(self.first) and local.isdigit() and int(self.first) <= int(local) <= int(self.last)

    def number_at(self, index: int) -> str:
        return f"{self.prefix}{int(self.first) + index:0{len(self.first)}d}"


@dataclass(frozen=True, slots=True)
class Partition:
    """A Summit partition (region/branch) and the categories its lines take as contracts change."""

    code: str
    description: str
    blocking_enabled: bool
    default_category: str | None = None
    block_category: str | None = None
    partial_block_category: str | None = None
    cancellation_category: str | None = None
    extra_categories: tuple[str, ...] = ()

    @staticmethod
    def checked(
        code: str,
        description: str,
        blocking_enabled: bool,
        default_category: str | None,
        block_category: str | None,
        partial_block_category: str | None,
        cancellation_category: str | None,
        extra_categories: tuple[str, ...] = (),
    ) -> Partition:
        if not code.strip():
            raise InvalidInput("code", "must be the partition code Summit gave you")
        if blocking_enabled:
            # The seed: with blocking on, default, block and cancellation are required; partial is optional.
            for name, value in (
                ("default_category", default_category),
                ("block_category", block_category),
                ("cancellation_category", cancellation_category),
            ):
                if not value:
                    raise InvalidInput(name, "is required when blocking_enabled is true")
        return Partition(
            code.strip(),
            description,
            blocking_enabled,
            default_category or None,
            block_category or None,
            partial_block_category or None,
            cancellation_category or None,
            tuple(extra_categories),
        )

    @property
    def allowed_categories(self) -> frozenset[str]:
        named = (self.default_category, self.block_category, self.partial_block_category, self.cancellation_category)
        return frozenset(c for c in (*named, *self.extra_categories) if c)


@dataclass(frozen=True, slots=True)
class CategoryChange:
    """What the blocking policy decided for one line: the category, whether it is blocked, the event kind."""

    category: str
    blocked: bool
    kind: LineEventKind
    reason: str


def category_for_contract_status(partition: Partition, status: ContractStatus) -> CategoryChange | None:
    """The partition-based blocking rule of IXC x Summit (seed 002, 2.2.1), or None to leave the line as is.

    blocked manually/automatically -> block category; financially overdue -> partial-block category,
    unchanged when the partition has none ("the line keeps consuming normally"); cancelled ->
    cancellation category; released -> default category. `active` is treated as released: the seed
    says an active line, neither blocked nor reduced, takes the default category. A partition with
    blocking disabled never changes its lines.
    """
    if not partition.blocking_enabled:
        return None
    if status in (ContractStatus.BLOCKED_MANUALLY, ContractStatus.BLOCKED_AUTOMATICALLY):
        assert partition.block_category is not None
        return CategoryChange(partition.block_category, True, LineEventKind.BLOCKED, f"contract {status.value}")
    if status is ContractStatus.FINANCIALLY_OVERDUE:
        if partition.partial_block_category is None:
            return None
        return CategoryChange(
            partition.partial_block_category, True, LineEventKind.BLOCKED, "contract financially_overdue (partial)"
        )
    if status is ContractStatus.CANCELLED:
        assert partition.cancellation_category is not None
        return CategoryChange(
            partition.cancellation_category, True, LineEventKind.CATEGORY_CHANGED, "contract cancelled"
        )
    assert partition.default_category is not None
    return CategoryChange(partition.default_category, False, LineEventKind.RELEASED, f"contract {status.value}")


def category_for_credit_breach(partition: Partition) -> CategoryChange | None:
    """A credit-limit breach blocks the one line: its partition's block category, if the partition has one.

    None means the partition defines no block category; the caller then deactivates the line.
    """
    if partition.block_category is None:
        return None
    return CategoryChange(partition.block_category, True, LineEventKind.BLOCKED, "credit limit exceeded")


@dataclass(frozen=True, slots=True)
class LineFields:
    """The fields of a SIP line as IXC's "Linha SIP" tab has them, validated."""

    contract_id: str
    integration_id: str
    bid_type: BidType
    number: str
    partition: str
    category: str
    plan: str
    due_day: int
    cost_centre: str
    call_limit: int
    licence: str | None = None
    billing_plan: str | None = None
    description: str | None = None
    account_code: str | None = None
    extension: str | None = None
    active: bool = True
    activation_date: date | None = None
    credit_limit: Decimal | None = None
    city: str | None = None


def check_due_day(value: int) -> int:
    if not FIRST_DUE_DAY <= value <= LAST_DUE_DAY:
        raise InvalidInput("due_day", f"must be between {FIRST_DUE_DAY} and {LAST_DUE_DAY} (got {value})")
    return value


def check_account_code(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    assert value is not None
    if not ACCOUNT_CODE.match(value):
        raise InvalidInput("account_code", f"must be exactly 6 digits, the calling-card code (got {value!r})")
    return value


def check_call_limit(value: int) -> int:
    if value < 1:
        raise InvalidInput("call_limit", "must be at least 1 simultaneous call")
    return value


def check_credit_limit(value: Decimal | None) -> Decimal | None:
    if value is not None and value < 0:
        raise InvalidInput("credit_limit", "must not be negative")
    return value


def check_did_port(value: int | None) -> int | None:
    """Port 1 routes the DID to the main line, another positive value creates a port, none = no calls."""
    if value is not None and value < 1:
        raise InvalidInput("port", f"must be a positive integer (1 = the main line) or empty (got {value})")
    return value


def check_category(partition: Partition, category: str, field_name: str = "category") -> str:
    allowed = partition.allowed_categories
    if allowed and category not in allowed:
        raise InvalidInput(
            field_name, f"{category!r} is not allowed in partition {partition.code!r}; choose one of {sorted(allowed)}"
        )
    return category


def same_cost_centre(a: str, b: str) -> bool:
    """Summit's cost centre is "Default" whatever its case (seed: DEFAULT, Default, default)."""
    return a.strip().casefold() == b.strip().casefold()


@dataclass(slots=True)
class Drift:
    """What the reconciliation found between our lines and Summit's terminals."""

    missing_on_summit: list[str] = field(default_factory=list)
    unknown_on_summit: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.missing_on_summit or self.unknown_on_summit or self.mismatched)

    def summary(self) -> str:
        return (
            f"{len(self.missing_on_summit)} line(s) missing on Summit, "
            f"{len(self.unknown_on_summit)} terminal(s) unknown here, {len(self.mismatched)} differing"
        )


@dataclass(frozen=True, slots=True)
class LineView:
    """What reconciliation compares for one line: ours or Summit's."""

    terminal_id: str
    number: str
    category: str
    active: bool


def compare(ours: dict[str, LineView], theirs: dict[str, LineView]) -> Drift:
    """Lines are matched by terminal id; the number, category and active flag must agree."""
    drift = Drift()
    for terminal_id, line in sorted(ours.items()):
        remote = theirs.get(terminal_id)
        if remote is None:
            drift.missing_on_summit.append(terminal_id)
        elif remote != line:
            drift.mismatched.append(terminal_id)
    drift.unknown_on_summit = sorted(set(theirs) - set(ours))
    return drift
