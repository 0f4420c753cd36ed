"""SMDR over real TCP sockets, both ways: records reach cdr.raw once, however the link misbehaves."""

from __future__ import annotations

from pathlib import Path

import pytest
from collector_harness import Collector, collector_settings, start_collector

from tarifa_collector.fake_ipoffice import FakeIpOffice, smdr_line
from tarifa_common import topics
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.contracts import CDR_COLLECTED, CollectedCdr, RejectedRecord
from tarifa_common.testing import eventually, unique

pytestmark = pytest.mark.broker


async def calls_of(collector: Collector, expected: int) -> list[CollectedCdr]:
    async def arrived() -> list[CollectedCdr]:
        events = [e for e in await collector.events(topics.CDR_RAW.name) if e.type == CDR_COLLECTED]
        assert len(events) >= expected, f"{len(events)} of {expected} calls on cdr.raw"
        return [CollectedCdr.model_validate(e.data) for e in events]

    return await eventually(arrived, timeout=30)


async def test_a_pbx_connecting_to_our_listener_delivers_each_call_once_despite_a_cut_and_a_resend(
    collector: Collector,
) -> None:
    port = free_port()
    await collector.add_source(id="pbx-hq", kind="smdr_listener", port=port, time_zone="America/Sao_Paulo")

    async def listening() -> None:
        assert (await collector.source("pbx-hq"))["health"]["connection"] == "listening"

    await eventually(listening)
    session = [smdr_line(1000 + n, fields=(17, 30, 31, 34)[n % 4]) for n in range(8)]
    cut_at = len(b"".join(session[:5])) + 40  # the link drops 40 bytes into the sixth record
    await FakeIpOffice.send_to("127.0.0.1", port, session, cut_at=cut_at)
    await FakeIpOffice.send_to("127.0.0.1", port, session)  # IP Office re-sends its whole buffer

    calls = await calls_of(collector, 8)
    assert sorted(int(c.call_id) for c in calls) == list(range(1000, 1008))
    assert {c.billable_seconds for c in calls} == {64}

    async def counted() -> dict[str, object]:
        health = (await collector.source("pbx-hq"))["health"]
        assert health["records_today"] == 8
        assert health["connection"] == "disconnected"
        return health

    health = await eventually(counted)
    assert health["rejects_today"] == 1  # the half record, cut by the dropped link

    async def rejected_published() -> list[RejectedRecord]:
        found = [RejectedRecord.model_validate(e.data) for e in await collector.events(topics.CDR_REJECTED.name)]
        assert found
        return found

    [rejected] = await eventually(rejected_published)
    assert rejected.reason.startswith("incomplete record")
    assert len(await calls_of(collector, 8)) == 8  # the re-sent buffer published nothing twice


async def test_our_client_reconnects_to_the_pbx_and_a_resent_buffer_is_no_duplicate(collector: Collector) -> None:
    office = FakeIpOffice()
    port = await office.listen()
    try:
        await office.emit(smdr_line(2000), smdr_line(2001))
        await collector.add_source(id="pbx-branch", kind="smdr_client", host="127.0.0.1", port=port)
        await calls_of(collector, 2)

        await office.drop_links(half_line=smdr_line(2002)[:30])

        async def reconnected() -> None:
            assert office.connections >= 2
            assert (await collector.source("pbx-branch"))["health"]["connection"] == "connected"

        await eventually(reconnected)
        await office.emit(smdr_line(2002), smdr_line(2003))
        calls = await calls_of(collector, 4)
        assert sorted(c.call_id for c in calls) == ["2000", "2001", "2002", "2003"]

        async def counted() -> None:
            health = (await collector.source("pbx-branch"))["health"]
            assert health["records_today"] == 4
            assert health["rejects_today"] == 1

        await eventually(counted)
    finally:
        await office.stop()


async def test_legs_of_a_transferred_call_arriving_apart_make_one_call(sqlite_collector: Collector) -> None:
    collector = sqlite_collector
    port = free_port()
    await collector.add_source(id="pbx-legs", kind="smdr_listener", port=port)

    async def listening() -> None:
        assert (await collector.source("pbx-legs"))["health"]["connection"] == "listening"

    await eventually(listening)
    first_leg = smdr_line(3000, connected="00:00:40", continuation=1)
    other_call = smdr_line(3001, start="2026/11/02 09:20:00")
    last_leg = smdr_line(3000, connected="00:02:00", ring=48, party1="E204", caller="204")
    await FakeIpOffice.send_to("127.0.0.1", port, [first_leg, other_call])
    await calls_of(collector, 1)
    await FakeIpOffice.send_to("127.0.0.1", port, [last_leg])

    calls = {c.call_id: c for c in await calls_of(collector, 2)}
    transferred = calls["3000"]
    assert transferred.billable_seconds == 160
    assert transferred.transferred
    assert (transferred.extension, transferred.answered_by) == ("203", "204")
    assert len(transferred.legs) == 2


async def test_legs_whose_last_record_never_comes_are_published_incomplete_not_lost(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = collector_settings(
        broker.bootstrap_servers, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", leg_timeout_minutes=0.01
    )
    runtime, client = await start_collector(settings)
    collector = Collector(client, runtime, settings, unique("tenant"), broker.bootstrap_servers)
    try:
        port = free_port()
        await collector.add_source(id="pbx-restart", kind="smdr_listener", port=port)

        async def listening() -> None:
            assert (await collector.source("pbx-restart"))["health"]["connection"] == "listening"

        await eventually(listening)
        # the first leg of a transfer, then the PBX restarts: the last record never comes
        await FakeIpOffice.send_to("127.0.0.1", port, [smdr_line(4000, connected="00:00:40", continuation=1)])

        [call] = await calls_of(collector, 1)
        assert call.call_id == "4000"
        assert not call.complete
        assert call.billable_seconds == 40
    finally:
        await client.aclose()
        await runtime.stop()
