"""The Summit CDR import as voip-summit's integration sets it: directory, period, schedule, delete option.

voip-summit owns the integration (`GET /v1/integrations/{id}`); the collector reads it and runs
the import with its drop-directory machinery. The schedule's fields are cron's, each a value, a
range or 'all'; for a monthly import the day of the month wins over the weekday (cron would run
on either), and the collector applies that rule itself rather than trust a computed string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tarifa_collector.domain.schedule import normalise
from tarifa_collector.domain.sources import AfterImport, RecordFormat, SourceKind, SourceSettings

FIELDS = ("minute", "hour", "day_of_month", "month", "day_of_week")


@dataclass(frozen=True, slots=True)
class SummitImport:
    """The import settings of one integration, as last read from voip-summit."""

    directory: str
    cron: str
    period: str
    delete_files: bool
    active: bool = True

    @classmethod
    def from_integration(cls, answer: dict[str, Any]) -> SummitImport:
        """From voip-summit's `IntegrationPublic`; KeyError/ValueError when the answer lacks what we need."""
        period = str(answer["import_period"])
        if period not in ("daily", "monthly"):
            raise ValueError(f"import_period {period!r} is neither daily nor monthly")
        return cls(
            directory=str(answer["cdr_directory"]),
            cron=cron_of(answer["import_schedule"], period),
            period=period,
            delete_files=bool(answer["delete_cdr_files"]),
            active=bool(answer.get("active", True)),
        )

    def source(self, summit_source: SourceSettings) -> SourceSettings:
        """The drop-directory source that runs this import for `summit_source` (its id, zone, alerts)."""
        return SourceSettings(
            id=summit_source.id,
            kind=SourceKind.DROP_DIRECTORY,
            format=RecordFormat.SUMMIT_CSV,
            time_zone=summit_source.time_zone,
            directory=self.directory,
            after_import=AfterImport.DELETE if self.delete_files else AfterImport.ARCHIVE,
            quiet_minutes=summit_source.quiet_minutes,
            enabled=summit_source.enabled and self.active,
            schedule=self.cron,
            numbering=summit_source.numbering,
        )


def cron_of(schedule: dict[str, Any], period: str) -> str:
    """The cron expression of an integration's schedule; monthly: the weekday is dropped (the day of the month wins)."""
    fields = [str(schedule[name]).replace("all", "*") for name in FIELDS]
    if period == "monthly" and fields[2] != "*":
        fields[4] = "*"
    return normalise(" ".join(fields))
