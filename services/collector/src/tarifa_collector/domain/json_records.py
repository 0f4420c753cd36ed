"""Calls posted as JSON (`POST /v1/cdrs`, or JSON-lines files): one object per call, validated by field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tarifa_collector.domain.records import Rejection, SourceContext, decode_line, record_id, to_utc
from tarifa_common.contracts import CallLeg, CollectedCdr, Direction, Disposition

KIND = "tarifa_json"


class PostedCdr(BaseModel):
    """A call as an operator's system posts it. `started_at` without an offset is the source's local time."""

    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(min_length=1, max_length=100, examples=["a81f-2291"])
    started_at: datetime = Field(examples=["2026-11-02T09:28:41"])
    duration_seconds: int = Field(ge=0, examples=[71])
    billable_seconds: int = Field(ge=0, examples=[64])
    direction: Direction = Field(examples=["outbound"])
    disposition: Disposition = Field(default=Disposition.ANSWERED)
    caller: str = Field(default="", max_length=64, examples=["203"])
    dialled: str = Field(default="", max_length=64, examples=["01133334444"])
    extension: str | None = Field(default=None, max_length=64, examples=["203"])
    trunk: str | None = Field(default=None, max_length=64)
    account_code: str | None = Field(default=None, max_length=64)


def canonical_line(record: dict[str, object]) -> bytes:
    """The archived form of a posted object: compact JSON with sorted keys, so re-posting it is a duplicate."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def parse_json_line(raw: bytes, source: SourceContext) -> CollectedCdr | Rejection:
    """One JSON object as a call; never raises."""
    text = decode_line(raw)
    if isinstance(text, Rejection):
        return text
    try:
        posted = PostedCdr.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'record'}: {item['msg']}" for item in error.errors()
        )
        return Rejection(problems, raw)
    if posted.billable_seconds > posted.duration_seconds:
        return Rejection("billable_seconds: cannot be more than duration_seconds", raw)
    try:
        if posted.started_at.tzinfo is None:
            started_at = to_utc(posted.started_at, source.zone)
            local_start = posted.started_at.isoformat()
        else:
            started_at = posted.started_at.astimezone(UTC)
            local_start = posted.started_at.astimezone(source.zone).replace(tzinfo=None).isoformat()
        ended_at = started_at + timedelta(seconds=posted.duration_seconds)
    except (OverflowError, ValueError):
        return Rejection("started_at: out of range", raw)
    answered = posted.billable_seconds > 0
    answered_at = ended_at - timedelta(seconds=posted.billable_seconds) if answered else None
    return CollectedCdr(
        tenant=source.tenant,
        source_id=source.source_id,
        source_kind=KIND,
        record_id=record_id(source, text),
        call_id=posted.call_id,
        legs=[
            CallLeg(
                extension=posted.extension,
                started_at=started_at,
                answered_at=answered_at,
                ended_at=ended_at,
                ring_seconds=posted.duration_seconds - posted.billable_seconds,
                talk_seconds=posted.billable_seconds,
            )
        ],
        started_at=started_at,
        local_start=local_start,
        time_zone=source.time_zone,
        answered_at=answered_at,
        ended_at=ended_at,
        duration_seconds=posted.duration_seconds,
        billable_seconds=posted.billable_seconds,
        direction=posted.direction,
        disposition=posted.disposition,
        caller=posted.caller,
        dialled=posted.dialled,
        extension=posted.extension,
        trunk=posted.trunk,
        account_code=posted.account_code,
        raw=text,
    )
