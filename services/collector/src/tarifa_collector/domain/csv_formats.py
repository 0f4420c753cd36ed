"""Asterisk `cdr_csv` (Master.csv), FreeSWITCH `mod_cdr_csv` (default template) and Summit CDR rows as calls.

All are CSV with quoted strings, read with the standard `csv` module. Each row is already one
call (Asterisk and FreeSWITCH write a row per bridged call; Summit a row per call of a line), so
a row is a billable call. The Summit Networks format has no public specification: ours is in
docs/collector.md ("Summit Networks CDR files"), with a sample file in the collector's tests.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime

from tarifa_collector.domain.records import Rejection, SourceContext, decode_line, record_id, to_utc
from tarifa_common.contracts import CallLeg, CollectedCdr, Direction, Disposition

ASTERISK_KIND = "asterisk_csv"
FREESWITCH_KIND = "freeswitch_csv"

# Master.csv: 16 fixed columns, then uniqueid, userfield, and (Asterisk 12+) peeraccount,
# linkedid, sequence.
ASTERISK_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
)
ASTERISK_DISPOSITIONS = {
    "ANSWERED": Disposition.ANSWERED,
    "NO ANSWER": Disposition.NO_ANSWER,
    "BUSY": Disposition.BUSY,
    "FAILED": Disposition.FAILED,
    "CONGESTION": Disposition.CONGESTION,
}
# mod_cdr_csv's default template (conf/autoload_configs/cdr_csv.conf.xml, template "example").
FREESWITCH_COLUMNS = (
    "caller_id_name",
    "caller_id_number",
    "destination_number",
    "context",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "uuid",
    "bleg_uuid",
    "accountcode",
    "read_codec",
    "write_codec",
)
FREESWITCH_CAUSES = {
    "NORMAL_CLEARING": Disposition.ANSWERED,
    "NO_ANSWER": Disposition.NO_ANSWER,
    "NO_USER_RESPONSE": Disposition.NO_ANSWER,
    "ORIGINATOR_CANCEL": Disposition.NO_ANSWER,
    "USER_BUSY": Disposition.BUSY,
    "NORMAL_CIRCUIT_CONGESTION": Disposition.CONGESTION,
    "SWITCH_CONGESTION": Disposition.CONGESTION,
}


SUMMIT_KIND = "summit_csv"
SUMMIT_COLUMNS = (
    "call_id",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "direction",
    "terminal",
    "credential",
    "caller",
    "called",
    "disposition",
    "partition",
    "cost_centre",
    "trunk",
)
SUMMIT_HEADER = ";".join(SUMMIT_COLUMNS).encode()
SUMMIT_DIRECTIONS = {"outbound": Direction.OUTBOUND, "inbound": Direction.INBOUND, "internal": Direction.INTERNAL}


def _row(raw: bytes, delimiter: str = ",") -> tuple[str, list[str]] | Rejection:
    text = decode_line(raw)
    if isinstance(text, Rejection):
        return text
    if not text.strip():
        return Rejection("empty line", raw)
    try:
        rows = list(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error as error:
        return Rejection(f"not a CSV row: {error}", raw)
    if len(rows) != 1:
        return Rejection("not a CSV row", raw)
    return text, rows[0]


def _stamp(value: str) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS` as both write it (local time), else None."""
    try:
        parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - local time of the PBX, zone applied after
    except ValueError:
        return None
    return parsed


def _count(value: str) -> int | None:
    return int(value) if value.isdigit() and value.isascii() and len(value) <= 9 else None


def _timing(
    row: dict[str, str], columns: Sequence[str], names: tuple[str, str, str, str, str], raw: bytes
) -> tuple[tuple[datetime, datetime | None, datetime], int, int] | Rejection:
    """A row's start, answer (may be empty), end, duration and billable seconds, named by `names`.

    Every format writes them the same way; an error names the column by its number and name.
    """

    def bad(name: str, expected: str) -> Rejection:
        return Rejection(f"column {columns.index(name) + 1} ({name}): {row[name]!r} is not {expected}", raw)

    start_name, answer_name, end_name, duration_name, billsec_name = names
    start = _stamp(row[start_name])
    if start is None:
        return bad(start_name, "a date YYYY-MM-DD HH:MM:SS")
    answer = _stamp(row[answer_name]) if row[answer_name] else None
    if row[answer_name] and answer is None:
        return bad(answer_name, "a date YYYY-MM-DD HH:MM:SS")
    end = _stamp(row[end_name])
    if end is None:
        return bad(end_name, "a date YYYY-MM-DD HH:MM:SS")
    duration, billsec = _count(row[duration_name]), _count(row[billsec_name])
    if duration is None:
        return bad(duration_name, "a number of seconds")
    if billsec is None:
        return bad(billsec_name, "a number of seconds")
    return (start, answer, end), duration, billsec


def _classify(src: str, dst: str) -> Direction:
    """Short numbers on both sides are extensions: internal; a short caller dialled out; else inbound."""
    src_is_extension = 0 < len(src) <= 6
    dst_is_extension = 0 < len(dst) <= 6
    if src_is_extension and dst_is_extension:
        return Direction.INTERNAL
    if src_is_extension:
        return Direction.OUTBOUND
    return Direction.INBOUND


def parse_asterisk(raw: bytes, source: SourceContext) -> CollectedCdr | Rejection:
    """One Master.csv row (16 to 21 columns) as a call; never raises."""
    parsed = _row(raw)
    if isinstance(parsed, Rejection):
        return parsed
    text, cells = parsed
    if not 16 <= len(cells) <= len(ASTERISK_COLUMNS):
        return Rejection(f"row has {len(cells)} columns; Asterisk Master.csv has 16 to 21", raw)
    row = dict(zip(ASTERISK_COLUMNS, cells, strict=False))
    timing = _timing(row, ASTERISK_COLUMNS, ("start", "answer", "end", "duration", "billsec"), raw)
    if isinstance(timing, Rejection):
        return timing
    times, duration, billsec = timing
    disposition = ASTERISK_DISPOSITIONS.get(row["disposition"])
    if disposition is None:
        return Rejection(
            f"column 15 (disposition): {row['disposition']!r} is not one of {', '.join(ASTERISK_DISPOSITIONS)}", raw
        )
    direction = _classify(row["src"], row["dst"])
    return one_leg_call(
        source,
        kind=ASTERISK_KIND,
        text=text,
        call_id=row.get("linkedid") or row.get("uniqueid") or "",
        times=times,
        duration=duration,
        billsec=billsec,
        billable=billsec if disposition is Disposition.ANSWERED else 0,
        direction=direction,
        disposition=disposition,
        caller=row["src"],
        dialled=row["dst"],
        party=row["dstchannel"] or None,
        trunk=row["dstchannel"] if direction is Direction.OUTBOUND and row["dstchannel"] else None,
        account_code=row["accountcode"],
    )


def parse_freeswitch(raw: bytes, source: SourceContext) -> CollectedCdr | Rejection:
    """One row of mod_cdr_csv's default template (15 columns) as a call; never raises."""
    parsed = _row(raw)
    if isinstance(parsed, Rejection):
        return parsed
    text, cells = parsed
    if len(cells) != len(FREESWITCH_COLUMNS):
        return Rejection(f"row has {len(cells)} columns; the FreeSWITCH default template has 15", raw)
    row = dict(zip(FREESWITCH_COLUMNS, cells, strict=True))
    names = ("start_stamp", "answer_stamp", "end_stamp", "duration", "billsec")
    timing = _timing(row, FREESWITCH_COLUMNS, names, raw)
    if isinstance(timing, Rejection):
        return timing
    times, duration, billsec = timing
    if billsec > 0:
        disposition = Disposition.ANSWERED
    else:
        disposition = FREESWITCH_CAUSES.get(row["hangup_cause"], Disposition.FAILED)
        if disposition is Disposition.ANSWERED:
            disposition = Disposition.NO_ANSWER
    return one_leg_call(
        source,
        kind=FREESWITCH_KIND,
        text=text,
        call_id=row["uuid"],
        times=times,
        duration=duration,
        billsec=billsec,
        billable=billsec,
        direction=_classify(row["caller_id_number"], row["destination_number"]),
        disposition=disposition,
        caller=row["caller_id_number"],
        dialled=row["destination_number"],
        party=None,
        trunk=None,
        account_code=row["accountcode"],
    )


def _e164(number: str) -> str | None:
    """Summit writes public numbers in E.164 (`+5511987654321`) and extensions as bare digits."""
    digits = number[1:]
    return (
        number if number.startswith("+") and digits.isdigit() and digits.isascii() and 8 <= len(digits) <= 15 else None
    )


def parse_summit(raw: bytes, source: SourceContext) -> CollectedCdr | Rejection:
    """One row of a Summit Networks CDR file (15 columns or more, `;`-separated) as a call; never raises."""
    parsed = _row(raw, ";")
    if isinstance(parsed, Rejection):
        return parsed
    text, cells = parsed
    if len(cells) < len(SUMMIT_COLUMNS):
        return Rejection(f"row has {len(cells)} columns; a Summit CDR row has at least {len(SUMMIT_COLUMNS)}", raw)
    row = dict(zip(SUMMIT_COLUMNS, cells, strict=False))
    if not row["call_id"]:
        return Rejection("column 1 (call_id): empty; every Summit call has an id", raw)
    timing = _timing(row, SUMMIT_COLUMNS, ("start", "answer", "end", "duration", "billsec"), raw)
    if isinstance(timing, Rejection):
        return timing
    times, duration, billsec = timing
    if times[2] < times[0]:
        return Rejection(f"column 4 (end): {row['end']!r} is before the start", raw)
    if billsec > duration:
        return Rejection(f"column 6 (billsec): {billsec} is longer than the duration ({duration})", raw)
    direction = SUMMIT_DIRECTIONS.get(row["direction"])
    if direction is None:
        return Rejection(
            f"column 7 (direction): {row['direction']!r} is not one of {', '.join(SUMMIT_DIRECTIONS)}", raw
        )
    disposition = ASTERISK_DISPOSITIONS.get(row["disposition"])
    if disposition is None:
        return Rejection(
            f"column 12 (disposition): {row['disposition']!r} is not one of {', '.join(ASTERISK_DISPOSITIONS)}", raw
        )
    call = one_leg_call(
        source,
        kind=SUMMIT_KIND,
        text=text,
        call_id=row["call_id"],
        times=times,
        duration=duration,
        billsec=billsec,
        billable=billsec if disposition is Disposition.ANSWERED else 0,
        direction=direction,
        disposition=disposition,
        caller=row["caller"],
        dialled=row["called"],
        party=row["called"] if direction is not Direction.INBOUND else row["caller"],
        trunk=row["trunk"] or None,
        account_code="",
        extension=row["credential"] or None,
    )
    return call.model_copy(update={"caller_e164": _e164(row["caller"]), "called_e164": _e164(row["called"])})


def one_leg_call(
    source: SourceContext,
    *,
    kind: str,
    text: str,
    call_id: str,
    times: tuple[datetime, datetime | None, datetime],
    duration: int,
    billsec: int,
    billable: int,
    direction: Direction,
    disposition: Disposition,
    caller: str,
    dialled: str,
    party: str | None,
    trunk: str | None,
    account_code: str,
    extension: str | None = None,
) -> CollectedCdr:
    """A CSV row is one leg and one call: the extension is the caller's, or the called one's if inbound."""
    start, answer, end = times
    zone = source.zone
    if extension is None:
        extension = (caller if direction is not Direction.INBOUND else dialled) or None
    started_at, answered_at, ended_at = to_utc(start, zone), to_utc(answer, zone) if answer else None, to_utc(end, zone)
    return CollectedCdr(
        tenant=source.tenant,
        source_id=source.source_id,
        source_kind=kind,
        record_id=record_id(source, text),
        call_id=call_id or record_id(source, text),
        legs=[
            CallLeg(
                extension=extension,
                party=party,
                started_at=started_at,
                answered_at=answered_at,
                ended_at=ended_at,
                ring_seconds=max(duration - billsec, 0),
                talk_seconds=billsec,
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
        caller=caller,
        dialled=dialled,
        extension=extension,
        trunk=trunk,
        account_code=account_code or None,
        raw=text,
    )
