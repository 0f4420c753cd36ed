"""The collector's API: sources and their validation, batch ingest, health alerts, watermarks, replays."""

from __future__ import annotations

import socket

import pytest
from collector_harness import Collector

from tarifa_collector.fake_ipoffice import FakeIpOffice, smdr_line
from tarifa_common import alerts, topics
from tarifa_common.broker import free_port
from tarifa_common.contracts import CDR_COLLECTED, CollectedCdr
from tarifa_common.events import Event
from tarifa_common.testing import eventually

pytestmark = pytest.mark.broker

CALL = {
    "call_id": "op-1",
    "started_at": "2026-11-02T09:00:00",
    "duration_seconds": 70,
    "billable_seconds": 60,
    "direction": "outbound",
    "caller": "203",
    "dialled": "01133334444",
    "extension": "203",
}


async def collected(collector: Collector, expected: int) -> list[CollectedCdr]:
    async def arrived() -> list[CollectedCdr]:
        events = [e for e in await collector.events(topics.CDR_RAW.name) if e.type == CDR_COLLECTED]
        assert len(events) >= expected, f"{len(events)} of {expected} calls on cdr.raw"
        return [CollectedCdr.model_validate(e.data) for e in events]

    return await eventually(arrived, timeout=30)


async def test_a_source_that_could_not_run_is_refused_naming_the_setting(sqlite_collector: Collector) -> None:
    collector = sqlite_collector
    answer = await collector.api.post(
        "/v1/sources", json={"id": "pbx", "kind": "smdr_client", "port": 1080}, headers=collector.headers()
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "host", "problem": "an SMDR client needs the IP Office address to connect to"}
    ]
    zone = await collector.api.post(
        "/v1/sources", json={"id": "pbx", "kind": "http", "time_zone": "Mars/Olympus"}, headers=collector.headers()
    )
    assert zone.json()["errors"][0]["field"] == "time_zone"
    schedule = await collector.api.post(
        "/v1/sources",
        json={"id": "summit", "kind": "drop_directory", "directory": "/tmp", "schedule": "0 25 * * *"},
        headers=collector.headers(),
    )
    assert schedule.json()["errors"][0]["field"] == "schedule"
    monthly = await collector.add_source(
        id="summit", kind="drop_directory", directory="/nonexistent", schedule="0 3 1 * *", after_import="delete"
    )
    assert monthly["schedule"] == "0 3 1 * *"
    await collector.add_source(id="feed", kind="http", format="asterisk_csv")
    again = await collector.api.post("/v1/sources", json={"id": "feed", "kind": "http"}, headers=collector.headers())
    assert again.status_code == 409
    viewer = await collector.api.post(
        "/v1/sources", json={"id": "x", "kind": "http"}, headers=collector.headers("viewer")
    )
    assert viewer.status_code == 403


async def test_a_posted_batch_answers_per_record_and_a_repost_is_all_duplicates(collector: Collector) -> None:
    await collector.add_source(id="operator-api", kind="http", time_zone="America/Sao_Paulo")
    bad = {**CALL, "call_id": "op-2", "billable_seconds": "lots"}
    batch = {"records": [CALL, bad, {**CALL, "call_id": "op-3"}]}
    answer = await collector.api.post(
        "/v1/cdrs", params={"source_id": "operator-api"}, json=batch, headers=collector.headers("ingest")
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 1)
    assert body["errors"][0]["index"] == 1
    assert body["errors"][0]["reason"].startswith("billable_seconds:")

    again = await collector.api.post(
        "/v1/cdrs", params={"source_id": "operator-api"}, json=batch, headers=collector.headers("ingest")
    )
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
    calls = await collected(collector, 2)
    assert sorted(c.call_id for c in calls) == ["op-1", "op-3"]
    assert {c.billable_seconds for c in calls} == {60}


async def test_a_csv_batch_is_read_in_the_source_format_and_an_oversized_batch_is_refused(
    sqlite_collector: Collector,
) -> None:
    collector = sqlite_collector
    await collector.add_source(id="ast", kind="http", format="asterisk_csv")
    row = (
        '"","2001","01133334444","from-internal","","SIP/2001-1","SIP/trunk-2","Dial","x",'
        '"2026-11-02 10:00:00","2026-11-02 10:00:12","2026-11-02 10:01:42",102,90,"ANSWERED","DOCUMENTATION","1.26",""'
    )
    answer = await collector.api.post(
        "/v1/cdrs",
        params={"source_id": "ast"},
        content=(row + "\n" + "not,a,row\n").encode(),
        headers={**collector.headers("ingest"), "Content-Type": "text/csv"},
    )
    assert answer.json()["accepted"] == 1
    assert answer.json()["errors"] == [{"index": 1, "reason": "row has 3 columns; Asterisk Master.csv has 16 to 21"}]
    [call] = await collected(collector, 1)
    assert call.billable_seconds == 90
    too_many = {"records": [CALL] * (collector.settings.http_max_batch + 1)}
    refused = await collector.api.post(
        "/v1/cdrs", params={"source_id": "ast"}, json=too_many, headers=collector.headers("ingest")
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "records"


async def test_a_dropped_link_raises_an_important_alert_that_records_resolve(sqlite_collector: Collector) -> None:
    collector = sqlite_collector
    port = free_port()
    await collector.add_source(id="pbx-alert", kind="smdr_listener", port=port)

    async def listening() -> None:
        assert (await collector.source("pbx-alert"))["health"]["connection"] == "listening"

    await eventually(listening)
    await FakeIpOffice.send_to("127.0.0.1", port, [smdr_line(1)])  # connects, sends, hangs up

    async def alert_events() -> list[str]:
        return [e.type for e in await collector.events(topics.ALERT_EVENTS.name)]

    async def raised() -> None:
        assert alerts.RAISED in await alert_events()
        assert (await collector.source("pbx-alert"))["health"]["link_down"]

    await eventually(raised)
    [event] = [e for e in await collector.events(topics.ALERT_EVENTS.name) if e.type == alerts.RAISED]
    assert event.data["severity"] == "important"
    assert event.data["fingerprint"] == f"collector/link-down/{collector.tenant}/pbx-alert"

    await FakeIpOffice.send_to("127.0.0.1", port, [smdr_line(2)])

    async def resolved() -> None:
        assert alerts.RESOLVED in await alert_events()

    await eventually(resolved)


async def test_the_watermark_waits_for_every_source_and_a_replay_republishes_the_same_events(
    sqlite_collector: Collector,
) -> None:
    collector = sqlite_collector
    await collector.add_source(id="feed-a", kind="http")
    await collector.add_source(id="feed-b", kind="http")
    for source_id, call_id, start in (("feed-a", "a1", "2026-11-30T23:00:00"), ("feed-a", "a2", "2026-12-01T08:00:00")):
        body = {"records": [{**CALL, "call_id": call_id, "started_at": start}]}
        answer = await collector.api.post(
            "/v1/cdrs", params={"source_id": source_id}, json=body, headers=collector.headers("ingest")
        )
        assert answer.json()["accepted"] == 1

    until = {"until": "2026-12-01T00:00:00Z"}
    mark = (await collector.api.get("/v1/watermark", params=until, headers=collector.headers("viewer"))).json()
    assert not mark["reached"]
    assert {s["source_id"]: s["reached"] for s in mark["sources"]}["feed-a"]
    # feed-b has delivered nothing since before `until`: its calls may still sit in a PBX buffer
    assert not {s["source_id"]: s["reached"] for s in mark["sources"]}["feed-b"]

    first = await collected(collector, 2)
    replay = await collector.api.post(
        "/v1/sources/feed-a/replays",
        json={"start": "2026-11-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"},
        headers=collector.headers(),
    )
    assert replay.status_code == 202

    async def done() -> dict[str, object]:
        status = (await collector.api.get(f"/v1/replays/{replay.json()['id']}", headers=collector.headers())).json()
        assert status["state"] == "done"
        return status

    status = await eventually(done)
    assert (status["total"], status["published"]) == (2, 2)

    async def republished() -> list[Event]:
        events = await collector.events(topics.CDR_RAW.name)
        assert len(events) >= 4
        return events

    replayed = await eventually(republished)
    assert len(replayed) == 4
    assert {e.id for e in replayed} == {c.record_id for c in first}


async def test_an_operator_csv_source_reads_its_own_layout_and_skips_the_header(sqlite_collector: Collector) -> None:
    collector = sqlite_collector
    mapping = {
        "columns": {"started_at": 1, "caller": 2, "dialled": 3, "duration_seconds": 4, "billable_seconds": 5},
        "delimiter": ";",
        "date_format": "%d/%m/%Y %H:%M:%S",
        "header": True,
    }
    created = await collector.add_source(
        id="telco", kind="http", format="operator_csv", column_mapping=mapping, time_zone="America/Sao_Paulo"
    )
    assert created["column_mapping"]["columns"]["duration_seconds"] == 4
    body = b"DATA;ORIGEM;DESTINO;DURACAO;TARIFADO\n02/11/2026 09:00:00;1133334444;1144445555;125;120\n"
    answer = await collector.api.post(
        "/v1/cdrs",
        params={"source_id": "telco"},
        content=body,
        headers={**collector.headers("ingest"), "Content-Type": "text/csv"},
    )
    assert answer.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "errors": []}
    [call] = await collected(collector, 1)
    assert (call.billable_seconds, call.caller, call.source_kind) == (120, "1133334444", "operator_csv")
    no_mapping = await collector.api.post(
        "/v1/sources", json={"id": "telco2", "kind": "http", "format": "operator_csv"}, headers=collector.headers()
    )
    assert no_mapping.json()["errors"][0]["field"] == "column_mapping"


async def test_a_link_that_cannot_run_says_why_in_its_health(sqlite_collector: Collector) -> None:
    collector = sqlite_collector
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        await collector.add_source(id="pbx-busy-port", kind="smdr_listener", port=port)
        await collector.add_source(id="pbx-away", kind="smdr_client", host="127.0.0.1", port=free_port())

        async def failed() -> None:
            listener = (await collector.source("pbx-busy-port"))["health"]
            assert listener["connection"] == "failed"
            assert "address already in use" in listener["last_error"].lower()
            client = (await collector.source("pbx-away"))["health"]
            assert client["last_error"].startswith("cannot connect to 127.0.0.1:")

        await eventually(failed)
    finally:
        taken.close()


async def test_a_source_with_a_numbering_plan_publishes_e164_numbers(sqlite_collector: Collector) -> None:
    collector = sqlite_collector
    plan = {"country_code": "55", "area_code": "11", "outside_line_prefix": "0"}
    created = await collector.add_source(id="pbx-sp", kind="http", format="avaya_smdr", numbering=plan)
    assert created["numbering"]["area_code"] == "11"
    assert created["numbering"]["subscriber_digits"] == [8, 9]
    outbound = smdr_line(1_000_001, dialled="0987654321")
    inbound = (
        b"2026/11/02 10:00:00,00:00:30,5,2133334444@10.0.0.9,I,203,33335000,,0,1000020000,0,"
        b"E203,Extn203,T9001,Line 1.1,0,0"
    )
    answer = await collector.api.post(
        "/v1/cdrs",
        params={"source_id": "pbx-sp"},
        content=outbound + inbound + b"\r\n",
        headers={**collector.headers("ingest"), "Content-Type": "text/csv"},
    )
    assert answer.json()["accepted"] == 2, answer.text
    calls = {call.direction.value: call for call in await collected(collector, 2)}
    assert calls["outbound"].called_e164 == "+5511987654321"
    assert calls["outbound"].caller_e164 is None  # an extension
    assert calls["inbound"].caller_e164 == "+552133334444"
    assert calls["inbound"].called_e164 == "+551133335000"
    bad = await collector.api.put(
        "/v1/sources/pbx-sp",
        json={"kind": "http", "format": "avaya_smdr", "numbering": {"area_code": "1"}},
        headers=collector.headers(),
    )
    assert bad.json()["errors"][0]["field"] == "numbering.area_code"


async def test_a_deleted_source_stops_publishes_its_waiting_legs_and_keeps_its_archive(
    sqlite_collector: Collector,
) -> None:
    collector = sqlite_collector
    port = free_port()
    await collector.add_source(id="pbx-old", kind="smdr_listener", port=port)

    async def listening() -> None:
        assert (await collector.source("pbx-old"))["health"]["connection"] == "listening"

    await eventually(listening)
    first_leg = smdr_line(77, continuation=1)  # a transfer whose last record never comes
    await FakeIpOffice.send_to("127.0.0.1", port, [smdr_line(76), first_leg])

    async def archived() -> None:
        assert (await collector.source("pbx-old"))["health"]["records_total"] == 2

    await eventually(archived)
    viewer = await collector.api.delete("/v1/sources/pbx-old", headers=collector.headers("viewer"))
    assert viewer.status_code == 403
    deleted = await collector.api.delete("/v1/sources/pbx-old", headers=collector.headers())
    assert deleted.status_code == 204
    gone = await collector.api.get("/v1/sources/pbx-old", headers=collector.headers())
    assert gone.status_code == 404
    assert (await collector.api.delete("/v1/sources/pbx-old", headers=collector.headers())).status_code == 404

    calls = {call.call_id: call for call in await collected(collector, 2)}
    assert calls["77"].complete is False  # the waiting leg, billed with what there is

    async def stopped() -> None:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, "the listener still accepts"

    await eventually(stopped)
    # Re-created under the same id, the source still knows every record it archived.
    await collector.add_source(id="pbx-old", kind="http", format="avaya_smdr")
    again = await collector.api.post(
        "/v1/cdrs",
        params={"source_id": "pbx-old"},
        content=smdr_line(76) + first_leg,
        headers={**collector.headers("ingest"), "Content-Type": "text/csv"},
    )
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
