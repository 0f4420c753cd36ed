"""Operator CSV files: any delimited layout, read through a column mapping set per source.

Operators export CDRs in layouts of their own; instead of a parser per operator, a source
says which column (1-based) holds which canonical field, the delimiter and the date format.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tarifa_collector.domain.records import Rejection, SourceContext, decode_line, record_id, to_utc
from tarifa_common.contracts import CallLeg, CollectedCdr, Direction, Disposition
from tarifa_common.errors import InvalidInput

KIND = "operator_csv"
REQUIRED = ("started_at", "duration_seconds")
OPTIONAL = (
    "call_id",
    "billable_seconds",
    "caller",
    "dialled",
    "extension",
    "direction",
    "disposition",
    "trunk",
    "account_code",
)
DIRECTIONS = {
    "i": Direction.INBOUND,
    "in": Direction.INBOUND,
    "inbound": Direction.INBOUND,
    "o": Direction.OUTBOUND,
    "out": Direction.OUTBOUND,
    "outbound": Direction.OUTBOUND,
    "internal": Direction.INTERNAL,
}


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which column (1-based) holds which field; `header` files have a first line of names to skip."""

    columns: dict[str, int] = field(default_factory=dict)
    delimiter: str = ","
    date_format: str = "%Y-%m-%d %H:%M:%S"
    header: bool = True
    default_direction: Direction = Direction.OUTBOUND

    def validate(self) -> None:
        missing = [name for name in REQUIRED if name not in self.columns]
        if missing:
            raise InvalidInput("column_mapping.columns", f"map the required field(s) {', '.join(missing)} to a column")
        unknown = sorted(set(self.columns) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise InvalidInput(
                "column_mapping.columns",
                f"unknown field(s) {', '.join(unknown)}; known: {', '.join(REQUIRED + OPTIONAL)}",
            )
        for name, column in self.columns.items():
            if column < 1:
                raise InvalidInput(f"column_mapping.columns.{name}", "columns are numbered from 1")
        if len(self.delimiter) != 1:
            raise InvalidInput("column_mapping.delimiter", "one character, e.g. ',' or ';'")
        try:
            datetime.now().strftime(self.date_format)  # noqa: DTZ005 - only checks the format string
        except ValueError as error:
            raise InvalidInput("column_mapping.date_format", f"not a strftime format: {error}") from error


def parse_operator_line(raw: bytes, source: SourceContext, mapping: ColumnMapping) -> CollectedCdr | Rejection:
    """One mapped row as a call; never raises."""
    text = decode_line(raw)
    if isinstance(text, Rejection):
        return text
    if not text.strip():
        return Rejection("empty line", raw)
    try:
        [cells] = list(csv.reader([text], delimiter=mapping.delimiter, strict=True))
    except (csv.Error, ValueError) as error:
        return Rejection(f"not a CSV row: {error}", raw)

    def cell(name: str) -> str | None:
        column = mapping.columns.get(name)
        if column is None:
            return None
        return cells[column - 1].strip() if column <= len(cells) else None

    needed = max(mapping.columns[name] for name in REQUIRED)
    if len(cells) < needed:
        return Rejection(f"row has {len(cells)} columns; the mapping reads column {needed}", raw)
    start_text = cell("started_at") or ""
    try:
        start = datetime.strptime(start_text, mapping.date_format)  # noqa: DTZ007 - local time, zone applied below
    except ValueError:
        column = mapping.columns["started_at"]
        return Rejection(f"column {column} (started_at): {start_text!r} does not match {mapping.date_format}", raw)
    numbers: dict[str, int] = {}
    for name in ("duration_seconds", "billable_seconds"):
        value = cell(name)
        if value is None or value == "":
            continue
        if not (value.isdigit() and value.isascii() and len(value) <= 9):
            return Rejection(f"column {mapping.columns[name]} ({name}): {value!r} is not a number of seconds", raw)
        numbers[name] = int(value)
    if "duration_seconds" not in numbers:
        return Rejection(f"column {mapping.columns['duration_seconds']} (duration_seconds): empty", raw)
    duration = numbers["duration_seconds"]
    billable = numbers.get("billable_seconds", duration)
    if billable > duration:
        return Rejection(
            f"column {mapping.columns['billable_seconds']} (billable_seconds): more than the duration", raw
        )
    direction_text = (cell("direction") or "").lower()
    direction = (
        DIRECTIONS.get(direction_text, mapping.default_direction) if direction_text else mapping.default_direction
    )
    if direction_text and direction_text not in DIRECTIONS:
        return Rejection(
            f"column {mapping.columns['direction']} (direction): {direction_text!r} "
            f"is not one of {', '.join(DIRECTIONS)}",
            raw,
        )
    disposition_text = (cell("disposition") or "").lower().replace(" ", "_")
    try:
        disposition = Disposition(disposition_text) if disposition_text else None
    except ValueError:
        return Rejection(f"column {mapping.columns['disposition']} (disposition): {disposition_text!r} is unknown", raw)
    if disposition is None:
        disposition = Disposition.ANSWERED if billable > 0 else Disposition.NO_ANSWER
    started_at = to_utc(start, source.zone)
    ended_at = started_at + timedelta(seconds=duration)
    answered_at = ended_at - timedelta(seconds=billable) if billable else None
    extension = cell("extension") or None
    return CollectedCdr(
        tenant=source.tenant,
        source_id=source.source_id,
        source_kind=KIND,
        record_id=record_id(source, text),
        call_id=cell("call_id") or record_id(source, text),
        legs=[
            CallLeg(
                extension=extension,
                started_at=started_at,
                answered_at=answered_at,
                ended_at=ended_at,
                ring_seconds=max(duration - billable, 0),
                talk_seconds=billable,
            )
        ],
        started_at=started_at,
        local_start=start.isoformat(),
        time_zone=source.time_zone,
        answered_at=answered_at,
        ended_at=ended_at,
        duration_seconds=duration,
        billable_seconds=billable,
        direction=direction,
        disposition=disposition,
        caller=cell("caller") or "",
        dialled=cell("dialled") or "",
        extension=extension,
        trunk=cell("trunk") or None,
        account_code=cell("account_code") or None,
        raw=text,
    )
