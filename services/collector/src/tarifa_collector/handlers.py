"""The collector's use cases: take records in, turn them into calls, watch sources, replay; one function each.

Handlers run inside a unit of work (one transaction) and reach storage through the
`CollectorStore` port, which `adapters.repository` implements on SQL.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections import defaultdict
from collections.abc import Callable, Collection, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

import orjson
from opentelemetry import propagate
from pydantic_core import to_json

from tarifa_collector.domain import csv_formats, json_records, operator_csv, smdr
from tarifa_collector.domain.numbering import NumberingPlan, fill_e164
from tarifa_collector.domain.records import PublishableCall, Rejection, SourceContext
from tarifa_collector.domain.sources import (
    Connection,
    Health,
    RecordFormat,
    SourceState,
    is_silent,
    link_is_down,
)
from tarifa_common import alerts, topics
from tarifa_common.contracts import CDR_COLLECTED, CDR_REJECTED, CollectedCdr, RejectedRecord
from tarifa_common.events import Event, deterministic_id, utcnow
from tarifa_common.unit_of_work import UnitOfWork

SERVICE = "collector"
ROW_PARSERS: dict[RecordFormat, Callable[[bytes, SourceContext], CollectedCdr | Rejection]] = {
    RecordFormat.ASTERISK_CSV: csv_formats.parse_asterisk,
    RecordFormat.FREESWITCH_CSV: csv_formats.parse_freeswitch,
    RecordFormat.TARIFA_JSON: json_records.parse_json_line,
    RecordFormat.SUMMIT_CSV: csv_formats.parse_summit,
}
INCOMPLETE_REASON = "incomplete record: the connection or file ended before its line end"


class NewArchiveRecord(NamedTuple):
    """One record for the archive (a tuple: a batch builds thousands); tenant, source and time are the batch's."""

    id: str
    call_id: str | None
    call_record_id: str | None
    raw: str


class RatingLedger(Protocol):
    """What the rater has accounted for (adapters.accounting.HttpRatingLedger asks its API)."""

    async def accounted(self, tenant: str, record_ids: Sequence[str]) -> set[str]: ...


class CollectorStore(Protocol):
    """What the handlers need of storage (adapters.repository.SqlCollectorStore)."""

    async def pending_legs(self, tenant: str, source_id: str, call_ids: Collection[str]) -> list[str]: ...

    async def stale_pending_legs(self, tenant: str, source_id: str, received_before: datetime) -> list[str]: ...

    async def archive(
        self, tenant: str, source_id: str, received_at: datetime, records: Sequence[NewArchiveRecord]
    ) -> set[str]:
        """Insert the records whose id is new (atomically, even against a concurrent writer); return their ids."""
        ...

    async def assign_call(self, leg_ids: Collection[str], call_record_id: str) -> None: ...

    async def save_calls(self, calls: Sequence[tuple[PublishableCall, bytes]], collected_at: datetime) -> None:
        """Keep each call with its JSON payload (the event's data, serialised once)."""
        ...

    async def state(self, tenant: str, source_id: str) -> SourceState: ...

    async def save_state(self, state: SourceState) -> None: ...

    async def calls_between(
        self,
        tenant: str,
        source_id: str,
        start: datetime,
        end: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[PublishableCall]: ...


@dataclass(slots=True)
class IngestOutcome:
    """What became of a batch of lines: counts, the calls published and per-line rejections."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    calls: list[PublishableCall] = field(default_factory=list)
    rejections: list[tuple[int, str]] = field(default_factory=list, repr=False)


def collected_event(call: PublishableCall, trace: dict[str, str] | None = None, time: datetime | None = None) -> Event:
    """`tarifa.cdr.collected.v1`; its id is the call's deterministic record id.

    `time`: when the call was collected (a batch's one `now`, as on its call rows; a clock read
    per event was 3 µs of the store step); by default, now.
    """
    return Event(
        type=CDR_COLLECTED,
        source=f"tarifa/collector/{call.source_id}",
        tenant=call.tenant,
        subject=call.call_id,
        id=call.record_id,
        data=call.data,
        traceparent=trace.get("traceparent") if trace else None,
        tracestate=trace.get("tracestate") if trace else None,
        time=time if time is not None else utcnow(),
    )


def _emit_rejection(uow: UnitOfWork, source: SourceContext, rejection: Rejection, location: str, now: datetime) -> None:
    record = RejectedRecord(
        tenant=source.tenant,
        source_id=source.source_id,
        source_kind=source.source_kind,
        reason=rejection.reason,
        raw_base64=base64.b64encode(rejection.raw).decode(),
        location=location,
        received_at=now,
    )
    event = Event(
        type=CDR_REJECTED,
        source=f"tarifa/collector/{source.source_id}",
        tenant=source.tenant,
        subject=source.source_id,
        id=deterministic_id(source.tenant, source.source_id, "rejected", location, record.raw_base64),
        data=record.model_dump(mode="json"),
    )
    uow.emit(event, topics.CDR_REJECTED, key=source.source_id)


def _emit_calls(uow: UnitOfWork, calls: Sequence[tuple[PublishableCall, bytes]], now: datetime | None = None) -> None:
    """Emit each call on `cdr.raw` with its data already serialised (the same bytes go to the archive).

    `now`: the events' time (the batch's collection time); by default each event's own clock read.
    """
    trace: dict[str, str] = {}
    propagate.inject(trace)  # the batch's trace context, taken once rather than per event
    for call, payload in calls:
        uow.emit(collected_event(call, trace, now), topics.CDR_RAW, call.source_id, data=payload)


def _publish(
    uow: UnitOfWork, calls: Sequence[PublishableCall], numbering: NumberingPlan | None = None
) -> list[tuple[PublishableCall, bytes]]:
    """Emit each call on `cdr.raw`; return each one with its data as JSON (serialised once, for the archive too).

    With the source's numbering plan, the calls' numbers get their E.164 form first.
    """
    serialised = [_serialised(call, numbering) for call in calls]
    _emit_calls(uow, serialised)
    return serialised


async def _save_and_publish(
    uow: UnitOfWork, store: CollectorStore, calls: Sequence[tuple[PublishableCall, bytes]], now: datetime
) -> None:
    """Keep the calls and emit them, with the data serialised once for both.

    The outbox messages are built (Python, on the event loop) while the database inserts the call
    rows (SQLite's own thread, or PostgreSQL): the insert is started first and awaited after.
    """
    if not calls:
        return
    saving = asyncio.ensure_future(store.save_calls(calls, now))
    try:
        await asyncio.sleep(0)  # let the insert reach the database before the Python work below
        _emit_calls(uow, calls, now)
    finally:
        # Even when building the messages failed or the link is cancelled: the transaction then rolls
        # back after the statement, never under it (a cancelled asyncpg statement can leave the
        # connection busy and the rollback failing in its turn).
        await saving


@dataclass(slots=True)
class PreparedBatch:
    """A batch of lines read and turned into archive rows and calls OUTSIDE any transaction (`prepare_lines`).

    Pure work on what the batch holds, so a link prepares its next batch while the previous one
    is being stored; `store_batch` then does only what needs the database. For SMDR, a call whose
    last record is here is assembled from this batch's legs; legs of it that came in earlier
    batches are looked up (and the call assembled again) in the store step, in the transaction
    that sees every earlier batch committed.
    """

    record_format: RecordFormat
    lines: Sequence[bytes]
    rejections: list[tuple[int, Rejection]]
    duplicates: int = 0
    mapping: operator_csv.ColumnMapping | None = None
    # SMDR only: by Call ID, the calls whose last record is here (from this batch's legs), each
    # with its data serialised, and the id of that last record; the archive rows of the batch's
    # new legs, in arrival order (each with its raw line: the rare store step that needs the
    # legs themselves parses them again from there).
    calls: dict[str, tuple[PublishableCall, bytes]] = field(default_factory=dict)
    finals: dict[str, str] = field(default_factory=dict)
    archive: list[NewArchiveRecord] = field(default_factory=list)


# Records a link prepares between two turns of the event loop (`prepare_steps`): about 10 ms of
# Python, so the previous batch's statements and the outbox relay go on while a batch is prepared.
PREPARE_STEP = 500


def prepare_lines(
    source: SourceContext,
    record_format: RecordFormat,
    lines: Sequence[bytes],
    *,
    incomplete: Sequence[bytes] = (),
    mapping: operator_csv.ColumnMapping | None = None,
) -> PreparedBatch:
    """The part of `ingest_lines` that needs no database: parse, drop in-batch duplicates, assemble calls.

    `incomplete` are line fragments cut by a dropped connection or a file without a final line
    end: rejected whatever they look like, since a cut record can still parse (with a wrong value).
    """
    steps = prepare_steps(source, record_format, lines, incomplete=incomplete, mapping=mapping)
    while (batch := next_step(steps)) is None:
        pass
    return batch


def next_step(steps: Generator[None, None, PreparedBatch]) -> PreparedBatch | None:
    """Run one step of `prepare_steps`: the batch once it is prepared, None while steps remain."""
    try:
        next(steps)
    except StopIteration as done:
        batch: PreparedBatch = done.value
        return batch
    return None


def prepare_steps(
    source: SourceContext,
    record_format: RecordFormat,
    lines: Sequence[bytes],
    *,
    incomplete: Sequence[bytes] = (),
    mapping: operator_csv.ColumnMapping | None = None,
) -> Generator[None, None, PreparedBatch]:
    """`prepare_lines` in steps: it yields every `PREPARE_STEP` records and returns the batch.

    A link runs the event loop at each yield: preparing a 1 MiB batch is about 130 ms of Python,
    and done in one go it held back the previous batch's store (each of its statements needs the
    loop to hand it to SQLite's thread) and the outbox relay for all that time.
    """
    batch = PreparedBatch(
        record_format,
        lines,
        [(len(lines) + n, Rejection(INCOMPLETE_REASON, fragment)) for n, fragment in enumerate(incomplete, start=1)],
        mapping=mapping,
    )
    if record_format is not RecordFormat.AVAYA_SMDR:
        return batch
    legs: dict[str, smdr.SmdrLeg] = {}  # the batch's new legs by record id, in arrival order
    rejections = batch.rejections
    parse = smdr.parse_line
    for number, raw in enumerate(lines, start=1):
        if not number % PREPARE_STEP:
            yield
        parsed = parse(raw, source)
        if isinstance(parsed, Rejection):
            rejections.append((number, parsed))
        elif parsed.record_id in legs:
            batch.duplicates += 1
        else:
            legs[parsed.record_id] = parsed
    by_call: dict[str, list[smdr.SmdrLeg]] = {}
    for leg in legs.values():
        group = by_call.get(leg.call_id)
        if group is None:
            by_call[leg.call_id] = [leg]
        else:
            group.append(leg)
    for number, (call_id, group) in enumerate(by_call.items(), start=1):
        if not number % PREPARE_STEP:
            yield
        for leg in group:
            if not leg.continuation:  # its last record (Continuation 0) is here: the call is complete
                batch.finals[call_id] = leg.record_id
                batch.calls[call_id] = _serialised(smdr.publishable_call(group, source), source.numbering)
                break
    batch.archive = _archive_rows(legs, batch.calls)
    return batch


def _archive_rows(
    legs: dict[str, smdr.SmdrLeg], calls: dict[str, tuple[PublishableCall, bytes]]
) -> list[NewArchiveRecord]:
    """The archive rows of a batch's legs: a leg of a call whose last record is here carries the call's id."""
    call_ids = _call_record_ids(calls)
    return [NewArchiveRecord(leg.record_id, leg.call_id, call_ids.get(leg.call_id), leg.raw) for leg in legs.values()]


def _call_record_ids(calls: dict[str, tuple[PublishableCall, bytes]]) -> dict[str, str]:
    """Each assembled call's record id by its Call ID: what the archive rows of its legs carry."""
    return {call_id: call.record_id for call_id, (call, _) in calls.items()}


def _legs_of(archive: Sequence[NewArchiveRecord], call_id: str, source: SourceContext) -> list[smdr.SmdrLeg]:
    """The batch's legs of one call, in arrival order, parsed again from their archive rows."""
    legs = []
    for row in archive:
        if row.call_id == call_id:
            leg = smdr.parse_line(row.raw.encode(), source)
            if isinstance(leg, smdr.SmdrLeg):
                legs.append(leg)
    return legs


def _serialised(call: PublishableCall, numbering: NumberingPlan | None) -> tuple[PublishableCall, bytes]:
    """The call with its E.164 numbers (with the source's plan) and its data as JSON, serialised once."""
    if numbering is not None:
        fill_e164(call.data, numbering)
    # JSON values only (PublishableCall.data), so pydantic's serialiser writes what `dumps` would.
    return call, to_json(call.data)


# What a prepare worker hands back for a batch (`handback`): the duplicate count, the rejections,
# the archive rows as tuples, and per complete call its Call ID, record id, call id, start, JSON
# and last record's id.
Handback = tuple[
    int,
    list[tuple[int, Rejection]],
    list[tuple[str, str | None, str | None, str]],
    list[tuple[str, str, str, datetime, bytes, str]],
]


def handback(batch: PreparedBatch) -> Handback:
    """A prepared batch as a worker process hands it to the service: tuples, strings and bytes.

    The batch itself, pickled, cost the service 19 to 22 µs a record to unpickle (its legs and
    its calls' objects) of the ~30 the prepare saves it; this form costs about 2, plus 7 to read
    each call's data back from its JSON (`bench/collector_prepare_handback.py`). The lines stay
    with the service, which sent them.
    """
    calls = [
        (key, call.record_id, call.call_id, call.started_at, payload, batch.finals[key])
        for key, (call, payload) in batch.calls.items()
    ]
    return batch.duplicates, batch.rejections, [tuple(row) for row in batch.archive], calls  # type: ignore[misc]


def prepare_handback(source: SourceContext, record_format: RecordFormat, lines: Sequence[bytes]) -> Handback:
    """`prepare_lines` as the prepare worker runs it for a link's whole lines: the batch in its `handback` form."""
    return handback(prepare_lines(source, record_format, lines))


def from_handback(
    handed: Handback, source: SourceContext, record_format: RecordFormat, lines: Sequence[bytes]
) -> PreparedBatch:
    """The service's `PreparedBatch` of what a worker handed back for `lines` (`handback`)."""
    duplicates, rejections, archive, calls = handed
    batch = PreparedBatch(record_format, lines, rejections, duplicates)
    batch.archive = [NewArchiveRecord(*row) for row in archive]
    tenant, source_id = source.tenant, source.source_id
    for key, record_id, call_id, started_at, payload, final in calls:
        # The emitted Event holds the data as a dict, as on every other path (the outbox takes the bytes).
        data = orjson.loads(payload)
        batch.calls[key] = (PublishableCall(record_id, tenant, source_id, call_id, started_at, data), payload)
        batch.finals[key] = final
    return batch


async def ingest_lines(
    uow: UnitOfWork,
    store: CollectorStore,
    source: SourceContext,
    record_format: RecordFormat,
    lines: Sequence[bytes],
    *,
    location: str,
    now: datetime,
    incomplete: Sequence[bytes] = (),
    mapping: operator_csv.ColumnMapping | None = None,
) -> IngestOutcome:
    """Archive every new record, publish the calls they complete, reject what cannot be read.

    All in the caller's transaction: a record counts as received only once this commits.
    `prepare_lines` then `store_batch`, for callers that do not pipeline them.
    """
    batch = prepare_lines(source, record_format, lines, incomplete=incomplete, mapping=mapping)
    return await store_batch(uow, store, source, batch, location=location, now=now)


async def store_batch(
    uow: UnitOfWork,
    store: CollectorStore,
    source: SourceContext,
    batch: PreparedBatch,
    *,
    location: str,
    now: datetime,
) -> IngestOutcome:
    """Archive a prepared batch's new records, publish the calls they complete, reject what could not be read.

    All in the caller's transaction: a record counts as received only once this commits. A call
    goes out only from the transaction that inserted its last record, so a re-sent buffer (even
    one prepared while its first copy was still being stored) publishes nothing twice.
    """
    outcome = IngestOutcome(duplicates=batch.duplicates)
    rejections = batch.rejections
    calls: list[tuple[PublishableCall, bytes]] = []
    if batch.record_format is RecordFormat.AVAYA_SMDR:
        assembled, archive = batch.calls, batch.archive
        earlier: dict[str, list[smdr.SmdrLeg]] = defaultdict(list)
        pending = await store.pending_legs(source.tenant, source.source_id, assembled) if assembled else []
        if pending:
            here = {row.id for row in archive}
            for raw_leg in pending:
                parsed = smdr.parse_line(raw_leg.encode(), source)
                if isinstance(parsed, smdr.SmdrLeg) and parsed.record_id not in here:
                    earlier[parsed.call_id].append(parsed)
        if earlier:  # rare: a transfer whose first legs came in an earlier batch, so the call's id changes
            for call_id, legs_before in earlier.items():
                assembled[call_id] = _serialised(
                    smdr.publishable_call(legs_before + _legs_of(archive, call_id, source), source), source.numbering
                )
            call_ids = _call_record_ids(assembled)
            archive = [row._replace(call_record_id=call_ids.get(row.call_id or "")) for row in archive]
        inserted = await store.archive(source.tenant, source.source_id, now, archive)
        # A call goes out when its last record is new here: a re-sent final record was published before.
        for call_id, prepared in assembled.items():
            if batch.finals[call_id] in inserted:
                calls.append(prepared)
                if call_id in earlier:
                    await store.assign_call([leg.record_id for leg in earlier[call_id]], prepared[0].record_id)
    else:
        if batch.record_format is RecordFormat.OPERATOR_CSV:
            if batch.mapping is None:
                raise ValueError("an operator_csv source needs its column mapping")
            parse: Callable[[bytes, SourceContext], CollectedCdr | Rejection] = functools.partial(
                operator_csv.parse_operator_line, mapping=batch.mapping
            )
        else:
            parse = ROW_PARSERS[batch.record_format]
        parsed_calls: dict[str, CollectedCdr] = {}
        for number, raw in enumerate(batch.lines, start=1):
            parsed_call = parse(raw, source)
            if isinstance(parsed_call, Rejection):
                rejections.append((number, parsed_call))
            elif parsed_call.record_id in parsed_calls:
                outcome.duplicates += 1
            else:
                parsed_calls[parsed_call.record_id] = parsed_call
        archive = [
            NewArchiveRecord(call.record_id, call.call_id, call.record_id, call.raw) for call in parsed_calls.values()
        ]
        inserted = await store.archive(source.tenant, source.source_id, now, archive)
        calls = [
            _serialised(PublishableCall.of(call), source.numbering)
            for call in parsed_calls.values()
            if call.record_id in inserted
        ]
    outcome.duplicates += len(archive) - len(inserted)
    await _save_and_publish(uow, store, calls, now)
    for number, rejection in rejections:
        _emit_rejection(uow, source, rejection, f"{location} line {number}", now)
    outcome.accepted = len(inserted)
    outcome.rejected = len(rejections)
    outcome.calls = [call for call, _ in calls]
    outcome.rejections = [(number, rejection.reason) for number, rejection in rejections]

    state = await store.state(source.tenant, source.source_id)
    state.count(
        accepted=outcome.accepted, rejected=outcome.rejected, today=now.astimezone(source.zone).date().isoformat()
    )
    if outcome.accepted or outcome.duplicates:
        state.last_record_at = now
        _resolve_alerts(uow, state)
    for call, _ in calls:
        if state.last_call_start is None or call.started_at > state.last_call_start:
            state.last_call_start = call.started_at
    await store.save_state(state)
    return outcome


async def flush_stale_legs(
    uow: UnitOfWork, store: CollectorStore, source: SourceContext, *, received_before: datetime, now: datetime
) -> list[PublishableCall]:
    """Publish, as incomplete calls, legs whose last record never came (a PBX restart, a lost line).

    Nothing is lost: the legs are billed with what we have, marked `complete: false`.
    """
    groups: dict[str, list[smdr.SmdrLeg]] = defaultdict(list)
    for raw_leg in await store.stale_pending_legs(source.tenant, source.source_id, received_before):
        parsed = smdr.parse_line(raw_leg.encode(), source)
        if isinstance(parsed, smdr.SmdrLeg):
            groups[parsed.call_id].append(parsed)
    calls = []
    for legs in groups.values():
        call = smdr.publishable_call(legs, source, complete=False)
        await store.assign_call([leg.record_id for leg in legs], call.record_id)
        calls.append(call)
    await _save_and_publish(uow, store, [_serialised(call, source.numbering) for call in calls], now)
    return calls


def _fingerprint(state: SourceState, condition: str) -> str:
    return f"collector/{condition}/{state.tenant}/{state.source_id}"


def _resolve_alerts(uow: UnitOfWork, state: SourceState, summary: str | None = None) -> None:
    for condition, is_open in (("source-silent", state.silent_alert), ("link-down", state.link_alert)):
        if is_open:
            alert = alerts.AlertResolved(
                fingerprint=_fingerprint(state, condition),
                object=alerts.AlertObject(kind="source", id=state.source_id),
                summary=summary or f"Call records flow again from {state.source_id}",
            )
            uow.emit(alerts.resolved(state.tenant, SERVICE, alert), topics.ALERT_EVENTS, key=alert.fingerprint)
    state.silent_alert = state.link_alert = False


async def check_health(
    uow: UnitOfWork,
    store: CollectorStore,
    health: Health,
    tenant: str,
    source_id: str,
    *,
    now: datetime,
    link_grace: timedelta,
) -> SourceState:
    """Raise an important alert for a silent source or a dropped PBX link (once; records resolve it)."""
    state = await store.state(tenant, source_id)
    health = Health(
        kind=health.kind,
        quiet_minutes=health.quiet_minutes,
        created_at=health.created_at,
        last_record_at=state.last_record_at,
        connection=state.connection,
        connection_changed_at=state.connection_changed_at,
    )
    if not state.silent_alert and is_silent(health, now):
        state.silent_alert = True
        since = state.last_record_at.isoformat() if state.last_record_at else "it was configured"
        _raise(
            uow,
            state,
            "source-silent",
            f"No call records from {source_id} for more than {health.quiet_minutes} minutes",
            {"last_record_at": since, "quiet_minutes": health.quiet_minutes},
        )
    if not state.link_alert and link_is_down(health, now, link_grace):
        state.link_alert = True
        _raise(
            uow,
            state,
            "link-down",
            f"The PBX link of {source_id} is down since {state.connection_changed_at}",
            {"peer": state.peer, "since": str(state.connection_changed_at)},
        )
    await store.save_state(state)
    return state


def _raise(uow: UnitOfWork, state: SourceState, condition: str, summary: str, details: dict[str, object]) -> None:
    alert = alerts.AlertRaised(
        fingerprint=_fingerprint(state, condition),
        severity=alerts.Severity.IMPORTANT,
        object=alerts.AlertObject(kind="source", id=state.source_id),
        summary=summary,
        details=details,
    )
    uow.emit(alerts.raised(state.tenant, SERVICE, alert), topics.ALERT_EVENTS, key=alert.fingerprint)


async def record_connection(
    store: CollectorStore,
    tenant: str,
    source_id: str,
    connection: Connection,
    peer: str | None,
    now: datetime,
    error: str | None = None,
) -> None:
    """Note a link's state (and why it failed, until it works again) for `GET /v1/sources` and the watchdog."""
    state = await store.state(tenant, source_id)
    if state.connection is not connection:
        state.connection_changed_at = now
    state.connection = connection
    state.peer = peer
    if error is not None or connection in (Connection.LISTENING, Connection.CONNECTED):
        state.last_error = error
    await store.save_state(state)


async def replay_calls(
    uow: UnitOfWork,
    store: CollectorStore,
    tenant: str,
    source_id: str,
    start: datetime,
    end: datetime,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> tuple[int, tuple[datetime, str] | None]:
    """Re-publish one page of a source's calls that started in [start, end); same event ids as before.

    Returns how many went out and where the next page starts (None when done).
    """
    calls = await store.calls_between(tenant, source_id, start, end, after, limit)
    _publish(uow, calls)
    return len(calls), _next_page(calls, limit)


async def republish_unaccounted(
    uow: UnitOfWork,
    store: CollectorStore,
    ledger: RatingLedger,
    tenant: str,
    source_id: str,
    start: datetime,
    end: datetime,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> tuple[int, int, tuple[datetime, str] | None]:
    """Re-publish the calls of one page that the rater has not accounted for (same event ids as before).

    Returns how many calls the page held, how many went out, and where the next page starts
    (None when done).
    """
    calls = await store.calls_between(tenant, source_id, start, end, after, limit)
    accounted = await ledger.accounted(tenant, [call.record_id for call in calls]) if calls else set()
    missing = [call for call in calls if call.record_id not in accounted]
    _publish(uow, missing)
    return len(calls), len(missing), _next_page(calls, limit)


def _next_page(calls: list[PublishableCall], limit: int) -> tuple[datetime, str] | None:
    """Where the page after a full one starts (calls are ordered by start, then record id); None at the end."""
    return (calls[-1].started_at, calls[-1].record_id) if len(calls) == limit else None


async def retire_source(
    uow: UnitOfWork, store: CollectorStore, source: SourceContext, *, smdr_link: bool, now: datetime
) -> list[PublishableCall]:
    """Before a source's configuration is deleted: nothing waiting is lost, no alert stays open.

    SMDR legs still waiting for their call's last record are published now as incomplete calls
    (the watchdog would never see them again); open silence and link alerts are resolved. The
    archive and the published calls stay: replays and the rater's accounting still find them,
    and a source re-created with the same id recognises every record it had.
    """
    calls: list[PublishableCall] = []
    if smdr_link:
        calls = await flush_stale_legs(uow, store, source, received_before=now + timedelta(days=1), now=now)
    state = await store.state(source.tenant, source.source_id)
    _resolve_alerts(uow, state, f"Source {source.source_id} was deleted")
    await store.save_state(state)
    return calls
