"""The rater's handlers: rate a collected call, apply a line change, retry unrated calls, re-rate a scope.

Handlers speak to storage through the `RaterStore` port; the SQL implementation lives in
`adapters`, and `bootstrap` hands it in. Each handler runs inside one unit of work: what it
stores and what it emits commit together or not at all.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from tarifa_common import alerts, contracts, topics
from tarifa_common.events import Event, deterministic_id, utcnow
from tarifa_common.unit_of_work import UnitOfWork
from tarifa_rater.domain.allowances import Consumption, Usage, amend, consume, cycle_of
from tarifa_rater.domain.money import exact
from tarifa_rater.domain.numbering import NumberingPlan
from tarifa_rater.domain.pricing import MEMO_LIMIT, Price
from tarifa_rater.domain.rating import (
    BAD_NUMBER,
    NO_TARIFF,
    UNKNOWN_EXTENSION,
    CallToRate,
    DirectoryEntry,
    Rating,
    Unratable,
    rate_call,
)
from tarifa_rater.domain.tariffs import PlanBook

SERVICE = "rater"
SOURCE = "tarifa/rater"
RATED = "rated"
UNRATED = "unrated"


@dataclass(frozen=True, slots=True)
class Allowance:
    """A line's included minutes per cycle, its due day and credit limit."""

    line_id: str
    included_seconds: int
    due_day: int
    credit_limit: Decimal | None = None
    contract_id: str | None = None


DIRECTIONS = frozenset(d.value for d in contracts.Direction)
DISPOSITIONS = frozenset(d.value for d in contracts.Disposition)
_REQUIRED_TEXT = ("tenant", "source_id", "source_kind", "record_id", "call_id", "local_start", "time_zone", "raw")
_OPTIONAL_TEXT = ("caller_e164", "called_e164", "extension", "answered_by")
_required_text = operator.itemgetter(*_REQUIRED_TEXT)
_STR = {str}
_STR_OR_NONE = {str, type(None)}


class CollectedCall(NamedTuple):
    """What the rater reads of a collected CDR (`tarifa.cdr.collected.v1`), decoded once per event.

    A named tuple, like the domain's other per-call values: a frozen dataclass sets each of its
    17 fields through `object.__setattr__`, which cost a few microseconds on every call.
    """

    tenant: str
    source_id: str
    record_id: str
    call_id: str
    started_at: datetime
    local_start: str
    time_zone: str
    billable_seconds: int
    direction: str
    answered: bool
    caller: str = ""
    caller_e164: str | None = None
    dialled: str = ""
    called_e164: str | None = None
    extension: str | None = None
    answered_by: str | None = None
    transferred: bool = False


def collected_call(data: dict[str, Any]) -> CollectedCall:
    """Read a collected CDR's data; a record that is not plainly well formed is validated by its contract.

    The fast path (`plain_collected_call`) checks the type of every field the rater reads and of
    the contract's other required fields (what the collector publishes always passes); anything
    else goes through `contracts.CollectedCdr`, whose error names the field, so bad input is
    refused exactly as before, without a pydantic round trip for every good record.
    """
    return plain_collected_call(data) or validated_collected_call(data)


def plain_collected_call(data: dict[str, Any]) -> CollectedCall | None:
    """The call of a plainly well-formed CDR (exact JSON types, known enums, an aware start); else None."""
    try:
        started = data["started_at"]
        billable = data["billable_seconds"]
        duration = data["duration_seconds"]
        direction = data["direction"]
        disposition = data["disposition"]
        caller = data.get("caller", "")
        dialled = data.get("dialled", "")
        transferred = data.get("transferred", False)
        required = _required_text(data)  # KeyError when one is missing
        optional = tuple(map(data.get, _OPTIONAL_TEXT))
        if (
            type(started) is str
            and type(billable) is int
            and type(duration) is int
            and billable >= 0
            and duration >= 0
            and direction in DIRECTIONS
            and disposition in DISPOSITIONS
            and type(caller) is str
            and type(dialled) is str
            and type(transferred) is bool
            and type(data.get("legs", [])) is list
            and set(map(type, required)) == _STR
            and set(map(type, optional)) <= _STR_OR_NONE
        ):
            moment = datetime.fromisoformat(started)
            if moment.tzinfo is not None:
                tenant, source_id, _, record_id, call_id, local_text, time_zone, _ = required
                caller_e164, called_e164, extension, answered_by = optional
                return CollectedCall(
                    tenant,
                    source_id,
                    record_id,
                    call_id,
                    moment,
                    local_text,
                    time_zone,
                    billable,
                    direction,
                    disposition == "answered",
                    caller,
                    caller_e164,
                    dialled,
                    called_e164,
                    extension,
                    answered_by,
                    transferred,
                )
    except (KeyError, TypeError, ValueError):
        pass
    return None


def validated_collected_call(data: dict[str, Any]) -> CollectedCall:
    """The call of a CDR validated by its contract (raises, naming the field, when the record is bad)."""
    cdr = contracts.CollectedCdr.model_validate(data)
    return CollectedCall(
        tenant=cdr.tenant,
        source_id=cdr.source_id,
        record_id=cdr.record_id,
        call_id=cdr.call_id,
        started_at=cdr.started_at,
        local_start=cdr.local_start,
        time_zone=cdr.time_zone,
        billable_seconds=cdr.billable_seconds,
        direction=cdr.direction.value,
        answered=cdr.disposition is contracts.Disposition.ANSWERED,
        caller=cdr.caller,
        caller_e164=cdr.caller_e164,
        dialled=cdr.dialled,
        called_e164=cdr.called_e164,
        extension=cdr.extension,
        answered_by=cdr.answered_by,
        transferred=cdr.transferred,
    )


@dataclass(slots=True)
class RatingContext:
    """A tenant's tariffs, directory, numbering and holidays, as rating needs them."""

    book: PlanBook = field(default_factory=PlanBook)
    directory: dict[str, DirectoryEntry] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    numbering: dict[str, NumberingPlan] = field(default_factory=dict)  # source id or "*" -> plan
    holidays: frozenset[date] = frozenset()
    allowances: dict[str, Allowance] = field(default_factory=dict)  # line id -> allowance

    def numbering_for(self, source_id: str, default: NumberingPlan) -> NumberingPlan:
        return self.numbering.get(source_id) or self.numbering.get("*") or default

    def entry_for(self, cdr: CollectedCall) -> DirectoryEntry | None:
        """The directory entry a call is charged to: its extension, else an alias of its DID."""
        if cdr.extension and cdr.extension in self.directory:
            return self.directory[cdr.extension]
        if not self.aliases:
            return None
        numbers = (cdr.caller, cdr.caller_e164) if cdr.direction == "outbound" else (cdr.dialled, cdr.called_e164)
        for number in numbers:
            if number:
                digits = "".join(ch for ch in number if ch.isdigit())
                extension = self.aliases.get(digits)
                if extension is not None and extension in self.directory:
                    return self.directory[extension]
        return None


@dataclass(slots=True)
class CallState:
    """A call as the rater keeps it: the collected record and its current rating."""

    tenant: str
    record_id: str
    source_id: str
    call_id: str
    started_at: datetime
    direction: str
    dialled: str
    billable_seconds: int
    cdr: str
    status: str = UNRATED
    called_e164: str | None = None
    extension: str | None = None
    answered_by: str | None = None
    transferred: bool = False
    reason: str | None = None
    detail: str | None = None
    version: int = 0
    call_class: str | None = None
    destination: str | None = None
    charged_seconds: int = 0
    amount: Decimal | None = None
    cost_amount: Decimal | None = None
    currency: str = "BRL"
    line_id: str | None = None
    customer_id: str | None = None
    contract_id: str | None = None
    cost_centre: str | None = None
    department: str | None = None
    plan: str | None = None
    rate: str | None = None
    band: str | None = None
    breakdown: str | None = None
    out_of_class: bool = False
    rated_at: datetime | None = None
    id: int | None = None

    def rating_signature(self) -> tuple[object, ...]:
        """What a re-rate compares: a change in any of these is a new version."""
        return (
            self.status,
            self.amount,
            self.cost_amount,
            self.charged_seconds,
            self.call_class,
            self.destination,
            self.plan,
            self.rate,
            self.band,
            self.line_id,
            self.customer_id,
            self.contract_id,
            self.cost_centre,
            self.department,
            self.out_of_class,
        )


@dataclass(frozen=True, slots=True)
class RerateScope:
    """Which calls a re-rate touches: a tenant and a period, optionally one source or line."""

    tenant: str
    start: datetime
    end: datetime
    source_id: str | None = None
    line: str | None = None  # a line id or an extension


@dataclass(frozen=True, slots=True)
class Waiting:
    """Which waiting calls a change can make ratable: those waiting for `reasons`, or of `extensions`.

    A new tariff or assignment retries the calls waiting for a tariff; a new extension, alias
    or line those waiting for an extension (and every waiting call of that extension, whose
    plan may now be another); a numbering context those with unreadable numbers or no tariff.
    """

    reasons: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()


FOR_TARIFF = Waiting(reasons=(NO_TARIFF,))
FOR_NUMBERING = Waiting(reasons=(BAD_NUMBER, NO_TARIFF))


def for_extensions(*extensions: str) -> Waiting:
    return Waiting(reasons=(UNKNOWN_EXTENSION,), extensions=extensions)


MAX_LISTED_EXTENSIONS = 1000  # beyond, a merged retry takes every waiting call: one scan, no huge IN list


def merge_waiting(queued: Waiting | None, wanted: Waiting | None) -> Waiting | None:
    """What one retry must cover for two changes: the union (None, every waiting call, absorbs all)."""
    if queued is None or wanted is None:
        return None
    extensions = sorted({*queued.extensions, *wanted.extensions})
    if len(extensions) > MAX_LISTED_EXTENSIONS:
        return None
    return Waiting(reasons=tuple(sorted({*queued.reasons, *wanted.reasons})), extensions=tuple(extensions))


@dataclass(slots=True)
class RetryChunk:
    """What one batch of a queued retry did: calls examined and rated, and the last call id examined."""

    examined: int = 0
    rated: int = 0
    last_id: int = 0


@dataclass(slots=True)
class RerateProgress:
    examined: int = 0
    changed: int = 0
    newly_rated: int = 0
    still_unrated: int = 0
    difference: Decimal = Decimal(0)
    last_id: int = 0


class RaterStore(Protocol):
    """What the handlers need from storage."""

    async def context(self, tenant: str) -> RatingContext: ...

    async def add_calls(self, calls: Sequence[CallState]) -> set[tuple[str, str]]:
        """Keep newly collected calls (and a rating row for each rated one); return the (tenant, record id) kept.

        (tenant, record_id) is unique: a record already kept, or twice in `calls`, is kept once and
        left out of the answer, so the caller publishes only what is new.
        """
        ...

    async def update_calls(self, changes: Sequence[tuple[CallState, str]]) -> None:
        """Write each (call, cause): its new state, and a rating row if rated (a retry's or re-rate's batch).

        One round trip per statement for the whole batch.
        """
        ...

    async def request_retry(self, tenant: str, waiting: Waiting | None) -> None:
        """Queue a retry of the tenant's waiting calls `waiting` names (None: all), merged with any queued one.

        The request commits with the change that caused it; the runtime works it off later, in batches.
        """
        ...

    async def unrated_calls(
        self, tenant: str, after_id: int, limit: int, waiting: Waiting | None = None
    ) -> Sequence[CallState]:
        """The tenant's waiting calls after `after_id` in id order; `waiting` narrows them (None: all)."""
        ...

    async def calls_in_scope(self, scope: RerateScope, after_id: int, limit: int) -> Sequence[CallState]: ...

    async def known_calls(self, tenant: str, record_ids: Sequence[str]) -> set[str]:
        """Which of `record_ids` the tenant's calls already hold."""
        ...

    async def usage(self, tenant: str, line_id: str, cycle: tuple[date, date], included_seconds: int) -> Usage:
        """The line's usage of a cycle, for this transaction to change (written back on commit)."""
        ...

    async def save_allowance(self, tenant: str, allowance: Allowance) -> None: ...

    async def save_line(self, tenant: str, entry: DirectoryEntry, numbers: Sequence[str], *, prune: bool) -> None:
        """Keep the line's directory entry and make `numbers` its aliases; `prune` drops its other aliases."""
        ...


def local_start(cdr: CollectedCall) -> datetime:
    """The call's start on the tenant's wall clock (time bands are local)."""
    try:
        return cdr.started_at.astimezone(ZoneInfo(cdr.time_zone)).replace(tzinfo=None)
    except (ZoneInfoNotFoundError, ValueError):
        return datetime.fromisoformat(cdr.local_start).replace(tzinfo=None)


def new_call(cdr: CollectedCall, raw: str) -> CallState:
    return CallState(
        tenant=cdr.tenant,
        record_id=cdr.record_id,
        source_id=cdr.source_id,
        call_id=cdr.call_id,
        started_at=cdr.started_at,
        direction=cdr.direction,
        dialled=cdr.dialled,
        billable_seconds=cdr.billable_seconds,
        cdr=raw,
        called_e164=cdr.called_e164,
        extension=cdr.extension,
        answered_by=cdr.answered_by,
        transferred=cdr.transferred,
    )


def evaluate(cdr: CollectedCall, context: RatingContext, default_numbering: NumberingPlan) -> Rating | Unratable:
    """Rate a collected call against a tenant's context (pure apart from the time-zone database)."""
    entry = context.entry_for(cdr)
    call = CallToRate(
        record_id=cdr.record_id,
        started_at=cdr.started_at,
        local_start=local_start(cdr),
        direction=cdr.direction,
        answered=cdr.answered,
        billable_seconds=cdr.billable_seconds,
        dialled=cdr.dialled or (cdr.called_e164 and "+" + cdr.called_e164.lstrip("+")) or "",
        extension=cdr.extension,
    )
    return rate_call(
        call, entry, context.book, context.numbering_for(cdr.source_id, default_numbering), context.holidays
    )


def apply_outcome(call: CallState, outcome: Rating | Unratable, now: datetime) -> CallState:
    """The call with `outcome` applied (the version is left to the caller)."""
    if isinstance(outcome, Unratable):
        return replace(call, status=UNRATED, reason=outcome.reason, detail=outcome.detail)
    entry = outcome.entry
    price = outcome.price
    return replace(
        call,
        status=RATED,
        reason=None,
        detail=None,
        call_class=outcome.call_class.value,
        called_e164=outcome.e164 or call.called_e164,
        destination=outcome.destination,
        charged_seconds=price.charged_seconds,
        amount=price.amount,
        cost_amount=price.cost_amount,
        currency=outcome.currency,
        line_id=entry.line_id if entry else None,
        customer_id=entry.customer_id if entry else None,
        contract_id=entry.contract_id if entry else None,
        cost_centre=entry.cost_centre if entry else None,
        department=entry.department if entry else None,
        plan=outcome.plan,
        rate=outcome.rate,
        band=price.band.value,
        breakdown=breakdown_of(price),
        out_of_class=outcome.out_of_class,
        rated_at=now,
    )


def first_state(cdr: CollectedCall, raw: str, outcome: Rating | Unratable, now: datetime) -> CallState:
    """A newly collected call with its first outcome: `apply_outcome(new_call(cdr, raw), outcome, now)` in one step.

    The consumer builds one for every call, so a rated call's state is made once instead of
    made and then copied field by field (`dataclasses.replace`); a test holds the two equal.
    """
    if isinstance(outcome, Unratable):
        return apply_outcome(new_call(cdr, raw), outcome, now)
    entry = outcome.entry
    price = outcome.price
    return CallState(
        tenant=cdr.tenant,
        record_id=cdr.record_id,
        source_id=cdr.source_id,
        call_id=cdr.call_id,
        started_at=cdr.started_at,
        direction=cdr.direction,
        dialled=cdr.dialled,
        billable_seconds=cdr.billable_seconds,
        cdr=raw,
        status=RATED,
        called_e164=outcome.e164 or cdr.called_e164,
        extension=cdr.extension,
        answered_by=cdr.answered_by,
        transferred=cdr.transferred,
        call_class=outcome.call_class.value,
        destination=outcome.destination,
        charged_seconds=price.charged_seconds,
        amount=price.amount,
        cost_amount=price.cost_amount,
        currency=outcome.currency,
        line_id=entry.line_id if entry else None,
        customer_id=entry.customer_id if entry else None,
        contract_id=entry.contract_id if entry else None,
        cost_centre=entry.cost_centre if entry else None,
        department=entry.department if entry else None,
        plan=outcome.plan,
        rate=outcome.rate,
        band=price.band.value,
        breakdown=breakdown_of(price),
        out_of_class=outcome.out_of_class,
        rated_at=now,
    )


_BREAKDOWNS: dict[int, tuple[Price, str]] = {}


def breakdown_of(price: Price) -> str:
    """The stored breakdown (JSON) of a price; prices are memoised per plan, so is their breakdown."""
    known = _BREAKDOWNS.get(id(price))
    if known is not None and known[0] is price:
        return known[1]
    parts = price.breakdown()
    if price.cost_amount is not None:
        parts["cost_amount"] = str(price.cost_amount)
    text = json.dumps(parts, sort_keys=True)
    if len(_BREAKDOWNS) >= MEMO_LIMIT:
        _BREAKDOWNS.clear()
    _BREAKDOWNS[id(price)] = (price, text)  # holding the price keeps its id from being reused
    return text


_PARSED_BREAKDOWNS: dict[str, dict[str, str]] = {}
# Breakdowns repeat with prices (a few thousand per plan); an allowance makes them per call, so the
# memo is cleared when it reaches this size (a few megabytes), not the price memo's 200,000.
PARSED_BREAKDOWNS_LIMIT = 20_000


def parsed_breakdown(text: str | None) -> dict[str, str]:
    """A stored breakdown read back (a copy: the caller may add to it); few texts recur, so each is parsed once."""
    if not text:
        return {}
    parsed = _PARSED_BREAKDOWNS.get(text)
    if parsed is None:
        if len(_PARSED_BREAKDOWNS) >= PARSED_BREAKDOWNS_LIMIT:
            _PARSED_BREAKDOWNS.clear()
        parsed = _PARSED_BREAKDOWNS[text] = json.loads(text)
    return dict(parsed)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _utc_text(moment: datetime) -> str:
    """ISO 8601 as pydantic writes it (`Z` for UTC), so the event reads the same whoever wrote it."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_LAST_TIME: list[tuple[datetime, str]] = []


def _batch_time_text(moment: datetime) -> str:
    """`_utc_text` of a time every call of a batch shares (its `rated_at`): written once per batch."""
    if _LAST_TIME and _LAST_TIME[0][0] is moment:
        return _LAST_TIME[0][1]
    text = _utc_text(moment)
    _LAST_TIME[:] = [(moment, text)]
    return text


def rated_event(call: CallState, previous_amount: Decimal | None, trace: str | None = None) -> tuple[Event, str]:
    """The `cdr.rated` event of a call's current version, and its key (line, else extension, else source).

    The data is `contracts.RatedCall` in its JSON form, written out field by field: this is the
    rater's hot path, and a test holds it to the contract's own serialisation.
    """
    assert call.amount is not None and call.call_class is not None and call.rated_at is not None
    breakdown = parsed_breakdown(call.breakdown)
    if previous_amount is not None:
        breakdown["difference"] = str(call.amount - previous_amount)
    data = {
        "tenant": call.tenant,
        "record_id": call.record_id,
        "version": call.version,
        "source_id": call.source_id,
        "call_id": call.call_id,
        "started_at": _utc_text(call.started_at),
        "direction": call.direction,
        "dialled": call.dialled,
        "called_e164": call.called_e164,
        "call_class": call.call_class,
        "destination": call.destination,
        "billable_seconds": call.billable_seconds,
        "charged_seconds": call.charged_seconds,
        "amount": str(call.amount),
        "cost_amount": _text(call.cost_amount),
        "previous_amount": _text(previous_amount),
        "currency": call.currency,
        "line_id": call.line_id,
        "extension": call.extension,
        "answered_by": call.answered_by,
        "transferred": call.transferred,
        "customer_id": call.customer_id,
        "contract_id": call.contract_id,
        "cost_centre": call.cost_centre,
        "department": call.department,
        "tariff_plan": call.plan,
        "rate": call.rate,
        "band": call.band,
        "breakdown": breakdown,
        "out_of_class": call.out_of_class,
        "rated_at": _batch_time_text(call.rated_at),
    }
    event = Event(
        type=contracts.CDR_RATED,
        source=SOURCE,
        tenant=call.tenant,
        subject=call.record_id,
        id=deterministic_id(call.tenant, "rated", call.record_id, str(call.version)),
        data=data,
        time=call.rated_at,
        traceparent=trace,
    )
    return event, call.line_id or call.extension or call.source_id


def unrated_event(call: CallState, trace: str | None = None) -> Event:
    data = {
        "tenant": call.tenant,
        "record_id": call.record_id,
        "source_id": call.source_id,
        "reason": call.reason or "unknown",
        "detail": call.detail or "",
    }
    return Event(
        type=contracts.CDR_UNRATED,
        source=SOURCE,
        tenant=call.tenant,
        subject=call.record_id,
        id=deterministic_id(call.tenant, "unrated", call.record_id, call.reason or "", call.detail or ""),
        data=data,
        traceparent=trace,
    )


Publication = tuple[Event, str, str | None]  # event, topic, key


def publish(uow: UnitOfWork, call: CallState, previous_amount: Decimal | None) -> None:
    emit(uow, publications(call, previous_amount))


def emit(uow: UnitOfWork, items: Sequence[Publication]) -> None:
    """Emit `items` in order; a `cdr.rated` event's data is serialised here, with orjson.

    A rated event's data holds only strings, integers, booleans, None and a dict of strings
    (`rated_event`), for which orjson writes exactly the bytes of `tarifa_common.events.dumps`
    (compact, UTF-8), ten times faster; other events keep the shared encoder.
    """
    for event, topic, key in items:
        if event.type == contracts.CDR_RATED:
            uow.emit(event, topic, key, data=orjson.dumps(event.data))
        else:
            uow.emit(event, topic, key)


def stored_cdr(data: dict[str, Any]) -> str:
    """A collected CDR's data as the call row keeps it (JSON, read back for retries and re-rates)."""
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:  # what orjson refuses and json writes: an integer beyond 64 bits
        return json.dumps(data)


def publications(call: CallState, previous_amount: Decimal | None, trace: str | None = None) -> list[Publication]:
    """What a call's new state means: its rated version (and an out-of-class alert), or why it waits."""
    if call.status == UNRATED:
        return [(unrated_event(call, trace), topics.CDR_UNRATED.name, call.source_id)]
    event, key = rated_event(call, previous_amount, trace)
    found: list[Publication] = [(event, topics.CDR_RATED.name, key)]
    if call.out_of_class and call.version == 1:
        who = call.extension or call.line_id or "?"
        alert = alerts.AlertRaised(
            fingerprint=f"rater/out-of-class/{who}",
            severity=alerts.Severity.IMPORTANT,
            object=alerts.AlertObject(kind="extension", id=who),
            summary=f"Extension {who} made a {call.call_class} call to {call.dialled}, outside its class of service",
            details={
                "record_id": call.record_id,
                "amount": str(call.amount),
                "started_at": call.started_at.isoformat(),
            },
        )
        found.append((alerts.raised(call.tenant, SERVICE, alert), topics.ALERT_EVENTS.name, alert.fingerprint))
    return found


async def rate_collected_cdr(event: Event, uow: UnitOfWork, store: RaterStore, numbering: NumberingPlan) -> None:
    """`tarifa.cdr.collected.v1`: rate the call once (a record seen before is a no-op), store it, publish it."""
    await rate_collected_cdrs([event], uow, store, numbering)


async def rate_collected_cdrs(
    events: Sequence[Event], uow: UnitOfWork, store: RaterStore, numbering: NumberingPlan, *, trace: str | None = None
) -> None:
    """A consumer batch of `tarifa.cdr.collected.v1`: rate each record once, store and publish what is new.

    Each CDR is decoded once; each tenant's context is read once; the new calls are written in
    one statement whose answer says which records were not kept before, and only those are
    published. A call on a line with an allowance uses it in batch order, once per record: a
    record already kept (or earlier in the batch) does not touch the allowance.
    `trace` is the W3C traceparent the batch's events carry (one per batch, not per event).
    """
    now = utcnow()
    contexts: dict[str, RatingContext] = {}
    fresh: dict[tuple[str, str], tuple[CallState, CollectedCall, Allowance | None]] = {}  # by (tenant, record)
    for event in events:
        cdr = collected_call(event.data)
        if (cdr.tenant, cdr.record_id) in fresh:
            continue  # the same record twice in a batch (re-sent under another event id): the first counts
        context = contexts.get(cdr.tenant)
        if context is None:
            context = contexts[cdr.tenant] = await store.context(cdr.tenant)
        call = first_state(cdr, stored_cdr(event.data), evaluate(cdr, context, numbering), now)
        allowance = None
        if call.status == RATED:
            call.version = 1
            allowance = context.allowances.get(call.line_id or "")
        fresh[(cdr.tenant, cdr.record_id)] = (call, cdr, allowance)
    extra: dict[tuple[str, str], list[Publication]] = {}
    with_allowance = [(call, cdr, allowance) for call, cdr, allowance in fresh.values() if allowance is not None]
    if with_allowance:
        known: dict[str, set[str]] = {}
        for tenant in {call.tenant for call, _, _ in with_allowance}:
            ids = [call.record_id for call, _, _ in with_allowance if call.tenant == tenant]
            known[tenant] = await store.known_calls(tenant, ids)
        for call, cdr, allowance in with_allowance:
            assert allowance is not None
            if call.record_id in known[call.tenant]:
                continue  # counted once: a re-sent record must not use the allowance twice
            extra[(call.tenant, call.record_id)] = await use_allowance(
                store, call, allowance, local_start(cdr).date(), trace
            )
    kept = await store.add_calls([call for call, _, _ in fresh.values()])
    for key, (call, _, _) in fresh.items():
        if key in kept:
            emit(uow, publications(call, None, trace))
            emit(uow, extra.get(key, ()))


async def use_allowance(
    store: RaterStore, call: CallState, allowance: Allowance, day: date, trace: str | None = None
) -> list[Publication]:
    """Let the line's allowance cover the call (changing its amount); return the usage events it causes."""
    assert call.amount is not None
    cycle = cycle_of(day, allowance.due_day)
    usage = await store.usage(call.tenant, allowance.line_id, cycle, allowance.included_seconds)
    before = call.amount
    used = consume(usage, call.charged_seconds, call.amount, allowance.credit_limit)
    if used.covered_seconds:
        call.amount = used.amount
        breakdown = json.loads(call.breakdown or "{}")
        breakdown.update(allowance_seconds=str(used.covered_seconds), price_before_allowance=str(before))
        call.breakdown = json.dumps(breakdown, sort_keys=True)
    return usage_events(call, allowance, cycle, usage, used, trace)


async def amend_allowance(
    store: RaterStore,
    previous: CallState,
    updated: CallState,
    allowance: Allowance,
    day: date,
    trace: str | None = None,
    *,
    leaving: bool = False,
) -> list[Publication]:
    """Count a re-rated call's difference in its line's cycle (`leaving`: the call left the line)."""
    assert previous.amount is not None and updated.amount is not None
    cycle = cycle_of(day, allowance.due_day)
    usage = await store.usage(previous.tenant, allowance.line_id, cycle, allowance.included_seconds)
    if leaving:
        seconds, amount = -previous.charged_seconds, -previous.amount
    else:
        seconds, amount = updated.charged_seconds - previous.charged_seconds, updated.amount - previous.amount
    used = amend(usage, seconds, amount, allowance.credit_limit)
    return usage_events(updated, allowance, cycle, usage, used, trace)


def usage_events(
    call: CallState,
    allowance: Allowance,
    cycle: tuple[date, date],
    usage: Usage,
    used: Consumption,
    trace: str | None,
) -> list[Publication]:
    """The `line.usage` events a change of the cycle's usage causes: thresholds reached, credit exceeded."""
    events: list[Publication] = []
    for level in used.thresholds:
        reached = contracts.UsageThresholdReached(
            tenant=call.tenant,
            line_id=allowance.line_id,
            contract_id=allowance.contract_id or call.contract_id,
            cycle_start=cycle[0],
            cycle_end=cycle[1],
            included_seconds=usage.included_seconds,
            used_seconds=usage.used_seconds,
            threshold_percent=level,
        )
        event = Event(
            type=contracts.LINE_USAGE_THRESHOLD,
            source=SOURCE,
            tenant=call.tenant,
            subject=allowance.line_id,
            id=deterministic_id(call.tenant, "usage", allowance.line_id, cycle[0].isoformat(), str(level)),
            data=reached.model_dump(mode="json"),
            traceparent=trace,
        )
        events.append((event, topics.LINE_USAGE.name, allowance.line_id))
    if used.credit_exceeded and allowance.credit_limit is not None:
        exceeded = contracts.CreditLimitExceeded(
            tenant=call.tenant,
            line_id=allowance.line_id,
            contract_id=allowance.contract_id or call.contract_id,
            credit_limit=allowance.credit_limit,
            spent=usage.spent,
            currency=call.currency,
            cycle_start=cycle[0],
        )
        event = Event(
            type=contracts.LINE_CREDIT_EXCEEDED,
            source=SOURCE,
            tenant=call.tenant,
            subject=allowance.line_id,
            id=deterministic_id(call.tenant, "credit", allowance.line_id, cycle[0].isoformat()),
            data=exceeded.model_dump(mode="json"),
            traceparent=trace,
        )
        events.append((event, topics.LINE_USAGE.name, allowance.line_id))
    return events


def keep_allowance(previous: CallState, updated: CallState) -> None:
    """A re-rate keeps the seconds the allowance covered the first time; only the price of the rest changes."""
    covered_text = json.loads(previous.breakdown or "{}").get("allowance_seconds")
    if not covered_text or updated.status != RATED or updated.amount is None or not updated.charged_seconds:
        return
    covered = min(int(covered_text), updated.charged_seconds)
    before = updated.amount
    updated.amount = exact(before * (updated.charged_seconds - covered) / updated.charged_seconds)
    breakdown = json.loads(updated.breakdown or "{}")
    breakdown.update(allowance_seconds=str(covered), price_before_allowance=str(before))
    updated.breakdown = json.dumps(breakdown, sort_keys=True)


async def apply_line_change(event: Event, uow: UnitOfWork, store: RaterStore, numbering: NumberingPlan) -> None:
    """`tarifa.line.*.v1` from voip-summit: keep the directory entry and DID aliases of the line, then retry."""
    change = contracts.LineChanged.model_validate(event.data)
    line = change.line
    entry = DirectoryEntry(
        extension=line.extension or line.line_id,
        line_id=line.line_id,
        contract_id=line.contract_id,
        cost_centre=line.cost_centre,
    )
    await store.save_allowance(
        change.tenant,
        Allowance(line.line_id, -1, line.due_day, line.credit_limit, line.contract_id),  # -1: keep included seconds
    )
    numbers = [n for n in [line.number, *line.dids] if n]
    # A removed DID is absent from the snapshot: the line's aliases become exactly its numbers.
    await store.save_line(change.tenant, entry, numbers, prune=change.kind is contracts.LineEventKind.DID_REMOVED)
    # Queued, not run here: a line event must not rate a tenant's whole backlog inside the consumer's batch.
    await store.request_retry(change.tenant, for_extensions(entry.extension))


async def retry_chunk(
    uow: UnitOfWork,
    store: RaterStore,
    tenant: str,
    numbering: NumberingPlan,
    waiting: Waiting | None,
    after_id: int,
    limit: int,
) -> RetryChunk:
    """Rate up to `limit` of the tenant's waiting calls after `after_id` (those `waiting` names; None: all).

    A call still unratable is left as it is. A rated call is version 1 and is published through the
    outbox of this transaction; a call another transaction rated meanwhile is no longer waiting, and
    the rating's key (tenant, record, version) refuses a second version 1.
    """
    context = await store.context(tenant)
    chunk = RetryChunk(last_id=after_id)
    now = utcnow()
    writes: list[tuple[CallState, str]] = []  # written together after the loop, in the same transaction
    for call in await store.unrated_calls(tenant, after_id, limit, waiting):
        assert call.id is not None
        chunk.last_id = call.id
        chunk.examined += 1
        cdr = collected_call(json.loads(call.cdr))
        updated = apply_outcome(call, evaluate(cdr, context, numbering), now)
        if updated.status == RATED:
            updated.version = 1
            extra: list[Publication] = []
            allowance = context.allowances.get(updated.line_id or "")
            if allowance is not None:
                extra = await use_allowance(store, updated, allowance, local_start(cdr).date())
            writes.append((updated, "retried"))
            publish(uow, updated, None)
            emit(uow, extra)
            chunk.rated += 1
    await store.update_calls(writes)
    return chunk


async def rerate_chunk(
    uow: UnitOfWork, store: RaterStore, scope: RerateScope, numbering: NumberingPlan, after_id: int, limit: int
) -> RerateProgress:
    """Re-rate up to `limit` calls of `scope` after `after_id`: a changed rating is a new version, never an edit."""
    context = await store.context(scope.tenant)
    progress = RerateProgress(last_id=after_id)
    now = utcnow()
    writes: list[tuple[CallState, str]] = []  # written together after the loop, in the same transaction
    for call in await store.calls_in_scope(scope, after_id, limit):
        assert call.id is not None
        progress.last_id = call.id
        progress.examined += 1
        cdr = collected_call(json.loads(call.cdr))
        updated = apply_outcome(call, evaluate(cdr, context, numbering), now)
        same_line = updated.line_id == call.line_id
        if same_line:
            keep_allowance(call, updated)
        if updated.rating_signature() == call.rating_signature():
            if updated.status == UNRATED:
                progress.still_unrated += 1
            continue
        if updated.status == UNRATED:
            # A rated call never loses its rating silently: it keeps its version until a tariff rates it again.
            progress.still_unrated += 1
            continue
        previous = call.amount if call.status == RATED else None
        updated.version = call.version + 1
        extra: list[Publication] = []
        allowance = context.allowances.get(updated.line_id or "")
        day = local_start(cdr).date()
        if previous is not None:
            # The cycle counts the new version instead of the old one: the difference, never the call twice.
            old_allowance = context.allowances.get(call.line_id or "")
            if old_allowance is not None:
                extra += await amend_allowance(store, call, updated, old_allowance, day, leaving=not same_line)
            if allowance is not None and not same_line:  # the call came to a line with an allowance
                extra += await use_allowance(store, updated, allowance, day)
        elif allowance is not None:  # rated for the first time: it uses the allowance
            extra = await use_allowance(store, updated, allowance, day)
        writes.append((updated, "rerate" if previous is not None else "retried"))
        publish(uow, updated, previous)
        emit(uow, extra)
        progress.changed += 1
        if previous is None:
            progress.newly_rated += 1
        assert updated.amount is not None
        progress.difference += updated.amount - (previous or Decimal(0))
    await store.update_calls(writes)
    return progress
