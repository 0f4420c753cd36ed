"""Source rules: when a source is silent, when a link counts as down, when a watermark is reached."""

from datetime import UTC, datetime, timedelta

import pytest

from tarifa_collector.domain.sources import (
    Connection,
    Health,
    RecordFormat,
    SourceKind,
    SourceSettings,
    is_silent,
    link_is_down,
    watermark_reached,
)
from tarifa_common.errors import InvalidInput

NOON = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def health(last_record_at: datetime | None, connection: Connection = Connection.CONNECTED) -> Health:
    return Health(
        kind=SourceKind.SMDR_LISTENER,
        quiet_minutes=20,
        created_at=NOON - timedelta(hours=5),
        last_record_at=last_record_at,
        connection=connection,
        connection_changed_at=NOON - timedelta(seconds=90),
    )


def test_a_source_is_silent_only_after_its_quiet_period() -> None:
    assert not is_silent(health(NOON - timedelta(minutes=20)), NOON)
    assert is_silent(health(NOON - timedelta(minutes=20, seconds=1)), NOON)
    assert is_silent(health(None), NOON)  # never delivered since it was configured five hours ago


def test_a_link_is_down_after_the_grace_period_of_a_disconnection() -> None:
    assert link_is_down(health(NOON, Connection.DISCONNECTED), NOON, timedelta(seconds=60))
    assert not link_is_down(health(NOON, Connection.DISCONNECTED), NOON, timedelta(seconds=120))
    assert not link_is_down(health(NOON, Connection.LISTENING), NOON, timedelta(0))


def test_a_watermark_is_reached_by_a_later_call_or_a_later_record() -> None:
    assert watermark_reached(NOON, None, NOON)
    assert watermark_reached(None, NOON + timedelta(seconds=1), NOON)
    assert not watermark_reached(NOON - timedelta(seconds=1), NOON - timedelta(seconds=1), NOON)


def test_an_smdr_link_needs_a_port_and_reads_only_smdr() -> None:
    with pytest.raises(InvalidInput) as error:
        SourceSettings(id="pbx", kind=SourceKind.SMDR_LISTENER, format=RecordFormat.AVAYA_SMDR).validate()
    assert error.value.problems[0].field == "port"
    with pytest.raises(InvalidInput) as wrong_format:
        SourceSettings(id="pbx", kind=SourceKind.SMDR_LISTENER, format=RecordFormat.ASTERISK_CSV, port=1080).validate()
    assert wrong_format.value.problems[0].field == "format"
