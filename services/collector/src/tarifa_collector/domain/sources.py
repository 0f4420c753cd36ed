"""Sources of call records: what kinds exist, which settings each needs, and when one is unhealthy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tarifa_collector.domain.numbering import NumberingPlan
from tarifa_collector.domain.operator_csv import ColumnMapping
from tarifa_collector.domain.schedule import normalise
from tarifa_common.errors import InvalidInput

SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class SourceKind(StrEnum):
    SMDR_LISTENER = "smdr_listener"  # we listen; IP Office connects to us (its "SMDR only" output)
    SMDR_CLIENT = "smdr_client"  # IP Office listens; we connect and reconnect with backoff
    DROP_DIRECTORY = "drop_directory"  # files dropped in a directory, read once, then archived or deleted
    HTTP = "http"  # batches posted to POST /v1/cdrs
    # The CDR directory of a voip-summit Summit integration: directory, schedule and delete option read there
    SUMMIT_INTEGRATION = "summit_integration"


class RecordFormat(StrEnum):
    AVAYA_SMDR = "avaya_smdr"
    ASTERISK_CSV = "asterisk_csv"
    FREESWITCH_CSV = "freeswitch_csv"
    OPERATOR_CSV = "operator_csv"  # any delimited layout, through the source's column mapping
    TARIFA_JSON = "tarifa_json"  # one JSON object per line (POST /v1/cdrs, JSON-lines files)
    SUMMIT_CSV = "summit_csv"  # Summit Networks CDR files (our definition: docs/collector.md)


class AfterImport(StrEnum):
    ARCHIVE = "archive"
    DELETE = "delete"


class Connection(StrEnum):
    IDLE = "idle"  # not a link (directory, HTTP), or not started yet
    LISTENING = "listening"  # waiting for the PBX to connect
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # the link dropped; retrying or waiting for the PBX
    FAILED = "failed"  # the link cannot run (port in use, bad address); `last_error` says why


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """A source as an operator configures it."""

    id: str
    kind: SourceKind
    format: RecordFormat
    time_zone: str = "UTC"
    host: str | None = None
    port: int | None = None
    directory: str | None = None
    after_import: AfterImport = AfterImport.ARCHIVE
    quiet_minutes: int = 60
    enabled: bool = True
    schedule: str | None = None
    column_mapping: ColumnMapping | None = None
    numbering: NumberingPlan | None = None
    integration_id: str | None = None

    def validate(self) -> None:
        """Refuse a source that could not run, naming the setting to fix."""
        if self.numbering is not None:
            self.numbering.validate()
        if not SOURCE_ID.match(self.id):
            raise InvalidInput(
                "id", "use 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit"
            )
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise InvalidInput(
                "time_zone", f"{self.time_zone!r} is not an IANA time zone such as America/Sao_Paulo"
            ) from error
        if self.quiet_minutes < 1:
            raise InvalidInput("quiet_minutes", "must be at least 1")
        if self.kind in (SourceKind.SMDR_LISTENER, SourceKind.SMDR_CLIENT):
            if self.format is not RecordFormat.AVAYA_SMDR:
                raise InvalidInput("format", f"a {self.kind.value} source reads avaya_smdr")
            if self.port is None or not 1 <= self.port <= 65535:
                raise InvalidInput(
                    "port", "an SMDR link needs a TCP port between 1 and 65535 (IP Office's default is 1080)"
                )
        if self.kind is SourceKind.SMDR_CLIENT and not self.host:
            raise InvalidInput("host", "an SMDR client needs the IP Office address to connect to")
        if self.kind is SourceKind.SUMMIT_INTEGRATION:
            if not self.integration_id:
                raise InvalidInput("integration_id", "a summit_integration source names the voip-summit integration")
            if self.format is not RecordFormat.SUMMIT_CSV:
                raise InvalidInput("format", "a summit_integration source reads summit_csv")
            for name in ("directory", "schedule"):
                if getattr(self, name) is not None:
                    raise InvalidInput(
                        name, f"a summit_integration source reads its {name} from the integration in voip-summit"
                    )
        elif self.integration_id is not None:
            raise InvalidInput("integration_id", "only a summit_integration source names an integration")
        if self.kind is SourceKind.DROP_DIRECTORY and not self.directory:
            raise InvalidInput("directory", "a drop directory source needs the directory to watch")
        if self.format is RecordFormat.OPERATOR_CSV:
            if self.column_mapping is None:
                raise InvalidInput("column_mapping", "an operator_csv source needs its column mapping")
            self.column_mapping.validate()
        if self.schedule is not None:
            if self.kind is not SourceKind.DROP_DIRECTORY:
                raise InvalidInput("schedule", "only a drop_directory source is imported on a schedule")
            normalise(self.schedule)

    @property
    def is_link(self) -> bool:
        return self.kind in (SourceKind.SMDR_LISTENER, SourceKind.SMDR_CLIENT)


@dataclass(frozen=True, slots=True)
class Health:
    """What the watchdog knows of a source at one moment."""

    kind: SourceKind
    quiet_minutes: int
    created_at: datetime
    last_record_at: datetime | None
    connection: Connection
    connection_changed_at: datetime | None


def is_silent(health: Health, now: datetime) -> bool:
    """Silent: no record for longer than the source's quiet period (counted from creation if none yet)."""
    since = health.last_record_at or health.created_at
    return now - since > timedelta(minutes=health.quiet_minutes)


def link_is_down(health: Health, now: datetime, grace: timedelta) -> bool:
    """A PBX link that has been disconnected for longer than `grace` (a quick reconnect is no alert)."""
    if health.connection is not Connection.DISCONNECTED or health.connection_changed_at is None:
        return False
    return now - health.connection_changed_at > grace


def watermark_reached(last_call_start: datetime | None, last_record_at: datetime | None, until: datetime) -> bool:
    """Has a source delivered every call that started before `until`?

    Yes once it delivered a call that started at or after `until`, or once it delivered anything
    after `until` (a PBX writes a record when a call ends and sends its buffer in order, so a
    record received after `until` means the calls of before have been sent). A source that has
    been silent since before `until` has not: its calls may be waiting in the PBX's buffer.
    """
    if last_call_start is not None and last_call_start >= until:
        return True
    return last_record_at is not None and last_record_at >= until


@dataclass(slots=True)
class SourceState:
    """The running tally of one source; `count` rolls the daily counters over at midnight (source time)."""

    tenant: str
    source_id: str
    connection: Connection = Connection.IDLE
    peer: str | None = None
    connection_changed_at: datetime | None = None
    last_record_at: datetime | None = None
    last_call_start: datetime | None = None
    day: str = ""
    records_today: int = 0
    rejects_today: int = 0
    records_total: int = 0
    rejects_total: int = 0
    silent_alert: bool = False
    link_alert: bool = False
    last_error: str | None = None

    def count(self, *, accepted: int, rejected: int, today: str) -> None:
        if self.day != today:
            self.day, self.records_today, self.rejects_today = today, 0, 0
        self.records_today += accepted
        self.rejects_today += rejected
        self.records_total += accepted
        self.rejects_total += rejected
