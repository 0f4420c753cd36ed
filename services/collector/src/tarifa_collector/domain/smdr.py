"""Avaya IP Office SMDR: one CSV record per call leg, and the rule that turns legs into billable calls.

Parsed by hand: SMDR has no quoting and no escaping (IP Office strips commas from names), so a
record is `line.split(",")`; the csv module would only add cost, and the speed target is
200,000 lines per second on one core. Dates are sliced rather than `strptime`-ed for the same
reason (about ten times faster).

Fields by position (1-based), as IP Office documents them; a record has 17 (releases before
5.0) up to 37 fields (R11.1 FP2+); later fields are optional and read when present:
 1 Call Start `YYYY/MM/DD HH:MM:SS` (seen without seconds)   2 Connected Time `HH:MM:SS`
 3 Ring Time (s)   4 Caller (blank, a number, an extension, or `number@ip` on SIP trunks)
 5 Direction `I`/`O` (internal calls show `O`)   6 Called Number   7 Dialled Number
 8 Account   9 Is Internal `0`/`1`   10 Call ID   11 Continuation `1` if more records follow
12 Party1Device  13 Party1Name  14 Party2Device  15 Party2Name  16 Hold Time (s)  17 Park Time (s)
18 AuthValid  19 AuthCode  ... 31 Calling Party Server IP ... 35 SMDR Record Time ...
Device names start with `E` for an extension, `T` for a trunk line, `V` for voicemail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tarifa_collector.domain.records import (
    PublishableCall,
    Rejection,
    SourceContext,
    decode_line,
    record_id,
    source_scoped_id,
)
from tarifa_common.contracts import CollectedCdr, Direction, Disposition

SOURCE_KIND = "avaya_smdr"
MIN_FIELDS = 17
MAX_FIELDS = 37


@dataclass(slots=True)
class SmdrLeg:
    """One SMDR record: one leg of a call, as IP Office reported it (not frozen: a frozen init costs 10%)."""

    record_id: str
    raw: str
    call_start: datetime  # naive, the PBX's wall clock
    connected_seconds: int
    ring_seconds: int
    caller: str
    inbound: bool
    called: str
    dialled: str
    account: str
    internal: bool
    call_id: str
    continuation: bool
    party1_device: str
    party1_name: str
    party2_device: str
    party2_name: str
    hold_seconds: int
    park_seconds: int
    auth_code: str

    @property
    def extension(self) -> str | None:
        """The extension of this leg: Party1 if it is one, else Party2 (`E203` is extension 203)."""
        for device in (self.party1_device, self.party2_device):
            if device[:1] == "E" and len(device) > 1:
                return device[1:]
        return None

    @property
    def trunk(self) -> str | None:
        for device in (self.party1_device, self.party2_device):
            if device[:1] == "T" and len(device) > 1:
                return device[1:]
        return None

    @property
    def seconds(self) -> int:
        return self.ring_seconds + self.connected_seconds + self.hold_seconds + self.park_seconds


def _date(text: str) -> datetime | None:
    """`YYYY/MM/DD HH:MM:SS` or `YYYY/MM/DD HH:MM`, else None (remembered: a feed repeats its minutes)."""
    known = _DATES.get(text)
    if known is not None:
        return known
    length = len(text)
    if length not in (16, 19) or text[4] != "/" or text[7] != "/" or text[10] != " " or text[13] != ":":
        return None
    if length == 19 and text[16] != ":":
        return None
    try:
        value = datetime(  # noqa: DTZ001 - the PBX's wall clock; SourceContext.zone applies later
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]) if length == 19 else 0,
        )
    except ValueError:
        return None
    if len(_DATES) >= _DATES_KEPT:
        _DATES.clear()
    _DATES[text] = value
    return value


# Call Start strings already read, and their value (bounded; a datetime is immutable).
_DATES: dict[str, datetime] = {}
_DATES_KEPT = 4096


def _duration(text: str) -> int | None:
    """`HH:MM:SS` (hours may pass 99 on very long calls) as seconds, else None."""
    if len(text) == 8 and text[2] == ":" and text[5] == ":" and text.isascii():
        hh, mm, ss = text[0:2], text[3:5], text[6:8]
        if hh.isdigit() and mm.isdigit() and ss.isdigit() and mm < "60" and ss < "60":
            return int(hh) * 3600 + int(mm) * 60 + int(ss)
        return None
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() and p.isascii() for p in parts):
        return None
    hours, minutes, seconds = int(parts[0]), int(parts[1]), int(parts[2])
    if minutes > 59 or seconds > 59:
        return None
    return hours * 3600 + minutes * 60 + seconds


def _seconds(text: str) -> int | None:
    if text == "":
        return 0
    if not (text.isdigit() and text.isascii()) or len(text) > 9:
        return None
    return int(text)


def _bad(number: int, name: str, value: str, expected: str, raw: bytes) -> Rejection:
    shown = value if len(value) <= 40 else value[:40] + "..."
    return Rejection(f"field {number} ({name}): {shown!r} is not {expected}", raw)


def parse_line(raw: bytes, source: SourceContext) -> SmdrLeg | Rejection:
    """Read one SMDR line (with or without its CRLF); never raises, rejects with a reason instead."""
    text = decode_line(raw)
    if isinstance(text, Rejection):
        return text
    if not text.strip():
        return Rejection("empty line", raw)
    # Only the first 19 fields are read: the rest stays in one piece, and is only counted.
    fields = text.split(",", 19)
    count = len(fields)
    if count == 20:
        count += fields[19].count(",")
    if count < MIN_FIELDS or count > MAX_FIELDS:
        return Rejection(
            f"record has {count} fields; IP Office SMDR has {MIN_FIELDS} to {MAX_FIELDS} (a half line, or not SMDR)",
            raw,
        )
    start = _date(fields[0])
    if start is None:
        return _bad(1, "Call Start", fields[0], "a date YYYY/MM/DD HH:MM[:SS]", raw)
    connected = _duration(fields[1])
    if connected is None:
        return _bad(2, "Connected Time", fields[1], "a duration HH:MM:SS", raw)
    ring = _seconds(fields[2])
    if ring is None:
        return _bad(3, "Ring Time", fields[2], "a number of seconds", raw)
    direction = fields[4]
    if direction not in ("I", "O"):
        return _bad(5, "Direction", direction, "I or O", raw)
    is_internal = fields[8]
    if is_internal not in ("0", "1"):
        return _bad(9, "Is Internal", is_internal, "0 or 1", raw)
    call_id = fields[9]
    if not (call_id.isdigit() and call_id.isascii()):
        return _bad(10, "Call ID", call_id, "a number", raw)
    continuation = fields[10]
    if continuation not in ("0", "1"):
        return _bad(11, "Continuation", continuation, "0 or 1", raw)
    hold = _seconds(fields[15])
    if hold is None:
        return _bad(16, "Hold Time", fields[15], "a number of seconds", raw)
    park = _seconds(fields[16])
    if park is None:
        return _bad(17, "Park Time", fields[16], "a number of seconds", raw)
    caller = fields[3]
    at = caller.find("@")
    if at >= 0:  # SIP trunks report `number@ip`; the address says nothing about who called
        caller = caller[:at]
    return SmdrLeg(  # by position: keywords cost a tenth of the parse
        record_id(source, text),
        text,
        start,
        connected,
        ring,
        caller,
        direction == "I",
        fields[5],
        fields[6],
        fields[7],
        is_internal == "1",
        call_id,
        continuation == "1",
        fields[11],
        fields[12],
        fields[13],
        fields[14],
        hold,
        park,
        fields[18] if count > 18 else "",
    )


def assemble_call(legs: Sequence[SmdrLeg], source: SourceContext, *, complete: bool = True) -> CollectedCdr:
    """The billable call made of the legs that share one Call ID, as the contract's model (see `call_data`)."""
    return CollectedCdr.model_validate(call_data(legs, source, complete=complete))


def call_data(legs: Sequence[SmdrLeg], source: SourceContext, *, complete: bool = True) -> dict[str, Any]:
    """The billable call made of the legs that share one Call ID, as `CollectedCdr` JSON values.

    The rule (docs/collector.md, "From legs to calls"): IP Office writes one record per leg
    when the leg ends, each with the connected time of that leg only, Continuation 1 on all
    but the last. A transferred call is therefore ONE billable call whose talk time is the sum
    of its legs' connected times: billing each record would charge the trunk call's connection
    (minimum, first increment) once per transfer, and billing only the last record would lose
    the talk before the transfer. Legs are ordered by start time, then by ring time (a
    transfer's second record shows the same Call Start and a later connection), then by
    arrival. The call is charged to the extension of its first leg (who placed or first took
    it); `answered_by` is the extension of the last leg when that differs.

    Built as plain JSON values rather than through the pydantic model: this is the collector's
    hot path, and the model cost more than everything else a call goes through (a test holds
    the result equal to `CollectedCdr(...).model_dump(mode="json")`). A leg's end is its UTC
    start plus its elapsed seconds.
    """
    return _call_data(legs, source, complete)[0]


def _call_data(legs: Sequence[SmdrLeg], source: SourceContext, complete: bool) -> tuple[dict[str, Any], datetime]:
    """`call_data`, and the call's start in UTC (naive: `publishable_call` needs it as a datetime)."""
    if not legs:
        raise ValueError("a call needs at least one leg")
    zone = source.zone
    # UTC as naive datetimes, written with a "Z": the zone's offset is looked up once per leg.
    if len(legs) == 1:
        # One record, the common case: the call's times are its leg's, each computed once.
        first = last = legs[0]
        utc_start = first.call_start - _offset(first.call_start, zone)
        started_at = _iso(utc_start)
        talk = first.connected_seconds
        duration = first.ring_seconds + talk + first.hold_seconds + first.park_seconds
        answered_at = _iso(utc_start + timedelta(seconds=first.ring_seconds)) if talk else None
        ended_at = _iso(utc_start + timedelta(seconds=duration))
        extension = last_extension = first.extension
        call_legs = [_leg_data(first, extension, started_at, answered_at, ended_at)]
        leg_ids = [first.record_id]
        raw = first.raw
        trunk = first.trunk
    else:
        ordered = sorted(legs, key=_leg_order)
        first, last = ordered[0], ordered[-1]
        utc_start = first.call_start - _offset(first.call_start, zone)
        started_at = _iso(utc_start)
        talk = 0
        duration = 0
        call_legs = []
        for leg in ordered:
            talk += leg.connected_seconds
            if leg is first:
                leg_start, leg_started_at, offset = utc_start, started_at, 0
            else:
                leg_start = leg.call_start - _offset(leg.call_start, zone)
                leg_started_at = _iso(leg_start)
                offset = int((leg.call_start - first.call_start).total_seconds())
            end = offset + leg.seconds
            if end > duration:
                duration = end
            call_legs.append(
                _leg_data(
                    leg,
                    leg.extension,
                    leg_started_at,
                    _iso(leg_start + timedelta(seconds=leg.ring_seconds)) if leg.connected_seconds else None,
                    _iso(leg_start + timedelta(seconds=leg.seconds)),
                )
            )
        answered_at = _iso(utc_start + timedelta(seconds=first.ring_seconds)) if talk else None
        ended_at = _iso(utc_start + timedelta(seconds=duration))
        extension = first.extension
        last_extension = last.extension
        leg_ids = sorted(leg.record_id for leg in ordered)
        raw = "\r\n".join(leg.raw for leg in ordered)
        trunk = first.trunk or last.trunk
    if first.internal:
        direction = _INTERNAL
    elif first.inbound:
        direction = _INBOUND
    else:
        direction = _OUTBOUND
    data = {
        "tenant": source.tenant,
        "source_id": source.source_id,
        "source_kind": SOURCE_KIND,
        "record_id": source_scoped_id(source, "smdr-call", first.call_id, *leg_ids),
        "call_id": first.call_id,
        "legs": call_legs,
        "started_at": started_at,
        "local_start": first.call_start.isoformat(),
        "time_zone": source.time_zone,
        "answered_at": answered_at,
        "ended_at": ended_at,
        "duration_seconds": duration,
        "billable_seconds": talk,
        "direction": direction,
        "disposition": _ANSWERED if talk else _NO_ANSWER,
        "caller": first.caller,
        "caller_e164": None,
        "dialled": first.dialled,
        "called_e164": None,
        "extension": extension,
        "answered_by": last_extension if last_extension != extension else None,
        "transferred": len(legs) > 1,
        "trunk": trunk,
        "account_code": first.account or first.auth_code or None,
        "raw": raw,
        "complete": complete,
        "leg_record_ids": leg_ids,
    }
    return data, utc_start


def _leg_data(
    leg: SmdrLeg, extension: str | None, started_at: str, answered_at: str | None, ended_at: str
) -> dict[str, Any]:
    return {
        "extension": extension,
        "party": leg.party2_name or leg.party2_device or None,
        "started_at": started_at,
        "answered_at": answered_at,
        "ended_at": ended_at,
        "ring_seconds": leg.ring_seconds,
        "talk_seconds": leg.connected_seconds,
        "hold_seconds": leg.hold_seconds,
        "park_seconds": leg.park_seconds,
    }


# The contract's enum values, looked up once (an enum's `.value` is a property).
_INTERNAL, _INBOUND, _OUTBOUND = Direction.INTERNAL.value, Direction.INBOUND.value, Direction.OUTBOUND.value
_ANSWERED, _NO_ANSWER = Disposition.ANSWERED.value, Disposition.NO_ANSWER.value


def _offset(local: datetime, zone: ZoneInfo) -> timedelta:
    """The zone's UTC offset at a wall-clock time (first occurrence in the autumn fold, as `to_utc`)."""
    return zone.utcoffset(local) or _NO_OFFSET


_NO_OFFSET = timedelta(0)


def _iso(naive_utc: datetime) -> str:
    return naive_utc.isoformat() + "Z"


def _leg_order(leg: SmdrLeg) -> tuple[datetime, int]:
    return leg.call_start, leg.ring_seconds


def publishable_call(legs: Sequence[SmdrLeg], source: SourceContext, *, complete: bool = True) -> PublishableCall:
    """`call_data` with what storage and the envelope need beside it."""
    data, utc_start = _call_data(legs, source, complete)
    return PublishableCall(
        record_id=data["record_id"],
        tenant=source.tenant,
        source_id=source.source_id,
        call_id=data["call_id"],
        started_at=utc_start.replace(tzinfo=UTC),
        data=data,
    )


def leg_end(leg: SmdrLeg) -> datetime:
    return leg.call_start + timedelta(seconds=leg.seconds)
