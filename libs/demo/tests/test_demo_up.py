"""`tarifa up --demo` as a real process: the whole story happens, and a second run duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from datetime import date, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from lxml import etree

from tarifa_common import auth
from tarifa_common.broker import free_port, port_is_open
from tarifa_common.testing import FAST_CONSUMER_ENV
from tarifa_demo import scenario
from tarifa_demo.seed import RECIPIENT_PHONE, DemoPorts
from tarifa_demo.sinks import SummitSink
from tarifa_demo.story import FINISHED

pytestmark = pytest.mark.slow
TARIFA = Path(sys.executable).parent / "tarifa"
SERVICE_PORTS = [8101, 8102, 8103, 8104, 8105]
UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}


def free_offset() -> int:
    for _ in range(100):
        offset = random.randrange(1000, 20000, 10)
        demo = DemoPorts.with_offset(offset)
        ports = [p + offset for p in SERVICE_PORTS] + [demo.smdr_hotel, demo.smdr_branch, demo.summit, demo.sms]
        if not any(port_is_open("127.0.0.1", port) for port in [*ports, demo.smtp]):
            return offset
    raise RuntimeError("no free block of ports")


class Demo:
    """One `tarifa up --demo` process and what it printed."""

    def __init__(self, data_dir: Path, offset: int) -> None:
        self.data_dir = data_dir
        self.offset = offset
        self.output = ""
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            str(TARIFA),
            "up",
            "--demo",
            "--data-dir",
            str(self.data_dir),
            "--broker-port",
            str(free_port()),
            "--port-offset",
            str(self.offset),
            env={**os.environ, **FAST_CONSUMER_ENV, "COLUMNS": "250"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def story_told(self, timeout: float = 240) -> str:
        assert self.process is not None and self.process.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while FINISHED not in self.output:
            line = await asyncio.wait_for(self.process.stdout.readline(), max(1.0, deadline - loop.time()))
            assert line, f"tarifa up --demo ended before its story did:\n{self.output}"
            self.output += line.decode(errors="replace")
            assert "failed:" not in self.output, self.output
        return self.output

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            assert await asyncio.wait_for(self.process.wait(), 60) == 0
        finally:
            if self.process.returncode is None:
                self.process.kill()

    def url(self, base_port: int) -> str:
        return f"http://127.0.0.1:{base_port + self.offset}/v1"


def headers(data_dir: Path) -> dict[str, str]:
    secret = (data_dir / "jwt-secret").read_text().strip()
    token = auth.mint(secret, subject="test", tenant=scenario.TENANT, roles=["admin"])
    return {"Authorization": f"Bearer {token}"}


async def get(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    answer = await client.get(url, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def snapshot(demo: Demo, client: httpx.AsyncClient, period: str) -> dict[str, Any]:
    """What must not change when the demo runs a second time on the same data directory."""
    rated = await get(client, f"{demo.url(8102)}/rated-calls", limit=5000)
    return {
        "rated": sorted((c["record_id"], c["version"]) for c in rated),
        "customers": sorted(c["id"] for c in await get(client, f"{demo.url(8104)}/customers")),
        "contracts": sorted(c["id"] for c in await get(client, f"{demo.url(8104)}/contracts")),
        "invoices": sorted(
            (i["number"], i["total"]) for i in await get(client, f"{demo.url(8104)}/invoices", period=period)
        ),
        "lines": sorted(line["id"] for line in await get(client, f"{demo.url(8103)}/lines")),
        "sources": sorted(s["id"] for s in await get(client, f"{demo.url(8101)}/sources")),
        "recipients": sorted(r["id"] for r in await get(client, f"{demo.url(8105)}/recipients")),
    }


async def test_tarifa_up_demo_tells_the_story_and_a_second_run_duplicates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    demo = Demo(data_dir, free_offset())
    await demo.start()
    try:
        output = await demo.story_told()
        assert "/docs" in output
        async with httpx.AsyncClient(headers=headers(data_dir), timeout=30) as client:
            period = scenario.previous_month(today())[0].strftime("%Y-%m")
            await assert_calls_rated(demo, client)
            await assert_invoices_issued(demo, client, data_dir, period)
            await assert_overdue_lines_blocked_then_released(demo, client)
            assert_alerts_reached_the_sinks(data_dir)
            first = await snapshot(demo, client, period)
    finally:
        await demo.stop()

    again = Demo(data_dir, demo.offset)
    await again.start()
    try:
        output = await again.story_told()
        assert "already seeded" in output
        async with httpx.AsyncClient(headers=headers(data_dir), timeout=30) as client:
            assert await snapshot(again, client, period) == first
    finally:
        await again.stop()


async def assert_calls_rated(demo: Demo, client: httpx.AsyncClient) -> None:
    rated = await get(client, f"{demo.url(8102)}/rated-calls", limit=5000)
    assert len(rated) == len(scenario.pbx_calls(today(), 12)) + scenario.ASTERISK_CALLS
    assert await get(client, f"{demo.url(8102)}/unrated-calls") == []
    priced = [c for c in rated if c["amount"] is not None and float(c["amount"]) > 0]
    assert len(priced) > 50
    assert all(c["currency"] == "BRL" for c in rated)
    (outside,) = [c for c in rated if c["out_of_class"]]
    assert (outside["extension"], outside["call_class"]) == ("201", "international")
    (transferred,) = [c for c in rated if c["transferred"]]
    assert (transferred["extension"], transferred["answered_by"], transferred["billable_seconds"]) == ("202", "205", 95)
    short = [c for c in rated if 0 < c["billable_seconds"] < 3]
    assert short and all(float(c["amount"] or 0) == 0 and c["charged_seconds"] == 0 for c in short)
    classes = {c["call_class"] for c in rated}
    assert {"local", "vc1", "vc2", "vc3", "long_distance", "international"} <= classes
    by_source = {c["record_id"] for c in rated if c["extension"] in ("301", "302")}
    assert len(by_source) == scenario.ASTERISK_CALLS


async def assert_invoices_issued(demo: Demo, client: httpx.AsyncClient, data_dir: Path, period: str) -> None:
    invoices = await get(client, f"{demo.url(8104)}/invoices", period=period)
    customers = {c["id"]: c["name"] for c in await get(client, f"{demo.url(8104)}/customers")}
    by_customer = {customers[i["customer_id"]]: i for i in invoices}
    assert set(by_customer) == {scenario.HOTEL, scenario.SCHOOL}  # the internal customer is not billable
    assert by_customer[scenario.SCHOOL]["tax"] == "0.00"  # tax-exempt
    assert float(by_customer[scenario.HOTEL]["tax"]) > 0
    folder = data_dir / "demo" / "output" / period
    for invoice in invoices:
        assert (folder / f"{invoice['number']}.pdf").read_bytes().startswith(b"%PDF")
        ubl = etree.fromstring((folder / f"{invoice['number']}.xml").read_bytes())
        assert etree.QName(ubl).localname == "Invoice"
        assert ubl.findtext("cbc:ID", namespaces=UBL) == invoice["number"]
        assert ubl.findtext(".//cbc:PayableAmount", namespaces=UBL) == invoice["total"]
        edifact = (folder / f"{invoice['number']}.edi").read_bytes().decode("latin-1")
        assert edifact.startswith("UNA") and "INVOIC:D:96A" in edifact
        assert f"BGM+380+{invoice['number']}" in edifact


async def assert_overdue_lines_blocked_then_released(demo: Demo, client: httpx.AsyncClient) -> None:
    lines = await get(client, f"{demo.url(8103)}/lines")
    school = [line for line in lines if line["partition"] == "SP-CAPITAL"]
    assert len(school) == 2
    for line in school:
        audit = await get(client, f"{demo.url(8103)}/lines/{line['id']}/audit")
        categories = [entry["new_category"] for entry in audit if entry["new_category"]]
        assert categories[-2:] == ["PARC", "LIVRE"], audit
        assert line["category"] == "LIVRE"
    (unblocked,) = [line for line in lines if line["partition"] == "RJ"]  # a partition without blocking
    assert not [
        e for e in await get(client, f"{demo.url(8103)}/lines/{unblocked['id']}/audit") if e["new_category"] == "PARC"
    ]
    summit_port = DemoPorts.with_offset(demo.offset).summit
    async with httpx.AsyncClient(auth=(SummitSink.USERNAME, SummitSink.PASSWORD)) as summit:
        for line in school:
            (terminal,) = (
                await summit.get(f"http://127.0.0.1:{summit_port}/api/v1/terminals", params={"external_id": line["id"]})
            ).json()
            assert terminal["category"] == "LIVRE"
            assert terminal["number"].lstrip("+") == line["number"].lstrip("+")


def assert_alerts_reached_the_sinks(data_dir: Path) -> None:
    subjects = [
        str(message_from_bytes(path.read_bytes(), policy=default)["Subject"])
        for path in (data_dir / "demo" / "mail").glob("*.eml")
    ]
    assert any("pbx-branch" in subject and "No call records" in subject for subject in subjects), subjects
    texts = [path.read_text() for path in (data_dir / "demo" / "sms").glob("*.txt")]
    assert any("SIP trunk down" in text and RECIPIENT_PHONE in text for text in texts), texts


def today() -> date:
    return datetime.now(ZoneInfo(scenario.TIME_ZONE)).date()
