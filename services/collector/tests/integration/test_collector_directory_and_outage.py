"""Drop directories (complete lines, each file once, then archived or deleted) and a broker outage losing nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from collector_harness import Collector, collector_settings, snapshot, start_collector

from tarifa_collector.fake_ipoffice import FakeIpOffice, smdr_line
from tarifa_common import topics
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.contracts import CDR_COLLECTED, CollectedCdr, RejectedRecord
from tarifa_common.testing import eventually, unique

pytestmark = pytest.mark.broker

ROW = (
    '"","{src}","01133334444","from-internal","","SIP/{src}-1","SIP/trunk-2","Dial","x",'
    '"2026-11-02 10:00:00","2026-11-02 10:00:12","2026-11-02 10:01:42",102,90,"ANSWERED","DOCUMENTATION","{uid}",""\n'
)


async def test_a_dropped_file_is_read_once_then_archived_and_its_cut_last_line_rejected(
    sqlite_collector: Collector, tmp_path: Path
) -> None:
    collector = sqlite_collector
    drop = tmp_path / "drop"
    drop.mkdir()
    content = "".join(ROW.format(src=2000 + n, uid=f"1.{n}") for n in range(3))
    (drop / "Master-1.csv").write_text(content + ROW.format(src=2999, uid="1.9")[:50])
    await collector.add_source(id="ast-dir", kind="drop_directory", format="asterisk_csv", directory=str(drop))

    async def archived() -> None:
        assert (drop / "archive" / "Master-1.csv").exists()
        assert not (drop / "Master-1.csv").exists()

    await eventually(archived)
    (drop / "Master-1-again.csv").write_text(content)  # the same file dropped a second time

    async def archived_again() -> None:
        assert (drop / "archive" / "Master-1-again.csv").exists()

    await eventually(archived_again)

    async def published() -> tuple[list[str], list[RejectedRecord]]:
        calls = [CollectedCdr.model_validate(e.data).caller for e in await collector.events(topics.CDR_RAW.name)]
        rejects = [RejectedRecord.model_validate(e.data) for e in await collector.events(topics.CDR_REJECTED.name)]
        assert len(calls) >= 3
        assert rejects
        return calls, rejects

    calls, [rejected] = await eventually(published)
    assert sorted(calls) == ["2000", "2001", "2002"]
    assert rejected.location == "file Master-1.csv from line 1 line 4"
    health = (await collector.source("ast-dir"))["health"]
    assert (health["records_today"], health["rejects_today"]) == (3, 1)


async def test_a_delete_after_import_source_removes_the_file(sqlite_collector: Collector, tmp_path: Path) -> None:
    collector = sqlite_collector
    (tmp_path / "cdr.csv").write_text(ROW.format(src=2100, uid="2.1"))
    await collector.add_source(
        id="fs-dir", kind="drop_directory", format="asterisk_csv", directory=str(tmp_path), after_import="delete"
    )

    async def deleted() -> None:
        assert not (tmp_path / "cdr.csv").exists()
        assert len(await collector.events(topics.CDR_RAW.name)) == 1

    await eventually(deleted)
    assert not (tmp_path / "archive").exists()


async def test_records_taken_while_the_broker_is_down_are_published_when_it_is_back(tmp_path: Path) -> None:
    down = EmbeddedBroker(free_port(), log_file=tmp_path / "broker.log")
    settings = collector_settings(down.bootstrap_servers, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    app_runtime, client = await start_collector(settings, wait_for_broker=False)
    collector = Collector(client, app_runtime, settings, unique("tenant"), down.bootstrap_servers)
    try:
        port = free_port()
        await collector.add_source(id="pbx-outage", kind="smdr_listener", port=port)

        async def listening() -> None:
            assert (await collector.source("pbx-outage"))["health"]["connection"] == "listening"

        await eventually(listening)
        await FakeIpOffice.send_to("127.0.0.1", port, [smdr_line(5000 + n) for n in range(20)])

        async def archived() -> None:
            assert (await collector.source("pbx-outage"))["health"]["records_today"] == 20

        await eventually(archived)
        await down.start()

        async def published() -> list[str]:
            events = [e for e in await snapshot(down.bootstrap_servers, topics.CDR_RAW.name) if e.type == CDR_COLLECTED]
            assert len(events) == 20
            return [str(e.data["call_id"]) for e in events]

        call_ids = await eventually(published, timeout=60)
        assert sorted(call_ids) == [str(5000 + n) for n in range(20)]
    finally:
        await client.aclose()
        await app_runtime.stop()
        await down.stop()


async def test_a_restarted_collector_republishes_recent_calls_to_a_fresh_broker(tmp_path: Path) -> None:
    first_broker = EmbeddedBroker(free_port(), log_file=tmp_path / "first.log")
    await first_broker.start()
    database = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    tenant = unique("tenant")
    first_settings = collector_settings(first_broker.bootstrap_servers, database)
    runtime, client = await start_collector(first_settings)
    collector = Collector(client, runtime, first_settings, tenant, first_broker.bootstrap_servers)
    try:
        await collector.add_source(id="feed", kind="http")
        now = datetime.now(UTC).replace(microsecond=0, tzinfo=None).isoformat()
        posted = await client.post(
            "/v1/cdrs",
            params={"source_id": "feed"},
            json={"records": [{"call_id": "r1", "started_at": now, "duration_seconds": 5, "billable_seconds": 5,
                               "direction": "outbound"}]},
            headers=collector.headers("ingest"),
        )  # fmt: skip
        assert posted.json()["accepted"] == 1
    finally:
        await client.aclose()
        await runtime.stop()
        await first_broker.stop()

    fresh_broker = EmbeddedBroker(free_port(), log_file=tmp_path / "fresh.log")
    await fresh_broker.start()
    settings = collector_settings(fresh_broker.bootstrap_servers, database, republish_on_start_hours=24)
    runtime, client = await start_collector(settings)
    try:

        async def republished() -> list[str]:
            events = await snapshot(fresh_broker.bootstrap_servers, topics.CDR_RAW.name)
            mine = [str(e.data["call_id"]) for e in events if e.tenant == tenant]
            assert mine
            return mine

        assert await eventually(republished) == ["r1"]
    finally:
        await client.aclose()
        await runtime.stop()
        await fresh_broker.stop()


async def test_a_summit_cdr_file_is_imported_and_deleted_as_the_integration_asks(
    sqlite_collector: Collector, tmp_path: Path
) -> None:
    collector = sqlite_collector
    drop = tmp_path / "summit"
    drop.mkdir()
    sample = Path(__file__).parent.parent / "samples" / "summit-cdr-20261102.csv"
    (drop / sample.name).write_bytes(sample.read_bytes())
    await collector.add_source(
        id="summit",
        kind="drop_directory",
        format="summit_csv",
        directory=str(drop),
        after_import="delete",
        time_zone="America/Sao_Paulo",
    )

    async def imported() -> list[CollectedCdr]:
        assert not (drop / sample.name).exists()
        calls = [CollectedCdr.model_validate(e.data) for e in await collector.events(topics.CDR_RAW.name)]
        assert len(calls) >= 6
        return calls

    calls = await eventually(imported)
    assert sorted(call.call_id for call in calls) == [f"sn-7f3a000{n}" for n in range(1, 7)]
    assert {call.source_kind for call in calls} == {"summit_csv"}
    assert not (drop / "archive").exists()
    health = (await collector.source("summit"))["health"]
    assert (health["records_total"], health["rejects_total"]) == (6, 0)  # the header is no reject
