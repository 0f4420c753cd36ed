"""The cross-service test: the whole journey of a call, from a PBX's SMDR line to an ERP and an e-mail.

Everything runs as it does in production or the demo, as separate processes: `tarifa up` (the
embedded broker and the five services, SQLite under a temporary data directory, free ports),
the Summit simulator (`tarifa voip-summit simulator`), and a real SMTP server (aiosmtpd) on
loopback that the notifier reaches through its SMTP settings. The test speaks only through the
public surfaces: the services' HTTP APIs with a minted token, SMDR over TCP, a plain Kafka
consumer, the simulator's API and the mailbox. Timers that default to minutes (watchdogs,
alert grouping, the grace of a dropped link) are set to seconds through the services' own
settings, so the story runs in a few minutes.

The data is small and explicit, and every expected price and total is computed by hand in the
comments beside it (Brazilian rules: under 3 s free, 30 s minimum then 6 s increments, a
connect fee, normal and reduced bands), never taken from what the code returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import re
import secrets
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from lxml import etree
from pypdf import PdfReader

from tarifa_collector.fake_ipoffice import smdr_line
from tarifa_common import auth
from tarifa_common.broker import free_port, port_is_open
from tarifa_common.service import discover
from tarifa_common.testing import FAST_CONSUMER_ENV, eventually, read_all
from tarifa_invoicer.conformance import EdifactChecker, UblValidator

pytestmark = pytest.mark.slow
TARIFA = Path(sys.executable).parent / "tarifa"
TENANT = "hotel-paulista"
RECIPIENT = "ana@hotelpaulista.example"  # responsible for every source of the tenant
SUMMIT_USER = "ixc-api"
SUMMIT_PASSWORD = "e2e-Summit-Pa55word"


class Mailbox:
    """A real SMTP server's handler (aiosmtpd on loopback) that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        self.messages.append(message_from_bytes(envelope.content, policy=default))  # type: ignore[arg-type]
        return "250 OK"


@dataclass
class Platform:
    """Where everything listens, and a client that speaks for the tenant."""

    data_dir: Path
    bootstrap: str
    ports: dict[str, int]
    summit_port: int
    smdr_port: int  # the head office's IP Office connects here
    branch_port: int  # and the branch's here
    mailbox: Mailbox
    http: httpx.AsyncClient

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    async def get(self, service: str, path: str, **params: Any) -> Any:
        answer = await self.http.get(self.url(service, path), params=params)
        assert answer.status_code == 200, f"GET {service}{path}: {answer.status_code} {answer.text}"
        return answer.json()

    async def send(self, method: str, service: str, path: str, expect: int, **kwargs: Any) -> Any:
        answer = await self.http.request(method, self.url(service, path), **kwargs)
        assert answer.status_code == expect, f"{method} {service}{path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    async def summit_terminals(self) -> list[dict[str, Any]]:
        """The simulator's own state, as Summit would show it (not what voip-summit believes)."""
        async with httpx.AsyncClient(auth=(SUMMIT_USER, SUMMIT_PASSWORD), timeout=10) as summit:
            answer = await summit.get(f"http://127.0.0.1:{self.summit_port}/api/v1/terminals")
        assert answer.status_code == 200, answer.text
        terminals: list[dict[str, Any]] = answer.json()
        return terminals


def free_offset(ports: list[int]) -> int:
    for _ in range(100):
        offset = random.randrange(1000, 20000, 10)
        if not any(port_is_open("127.0.0.1", port + offset) for port in ports):
            return offset
    raise RuntimeError("no free block of ports")


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


async def _stop(process: asyncio.subprocess.Process, timeout: float) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _wait_for_line(process: asyncio.subprocess.Process, marker: str, seen: list[str], timeout: float) -> None:
    assert process.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(marker in line for line in seen):
        line = await asyncio.wait_for(process.stdout.readline(), max(deadline - loop.time(), 0.1))
        assert line, "the process ended early:\n" + "".join(seen)
        seen.append(line.decode(errors="replace"))


async def _drain(process: asyncio.subprocess.Process, seen: list[str]) -> None:
    """Keep reading a child's output so its pipe never fills and blocks it."""
    assert process.stdout is not None
    while line := await process.stdout.readline():
        seen.append(line.decode(errors="replace"))


@pytest_asyncio.fixture(scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[Mailbox, int]) -> AsyncIterator[Platform]:
    """The whole platform as processes: `tarifa up`, the Summit simulator; torn down with Ctrl-C."""
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    specs = discover()
    offset = free_offset([spec.settings.default_http_port for spec in specs.values()])
    ports = {name: spec.settings.default_http_port + offset for name, spec in specs.items()}
    broker_port, summit_port, smdr_port, branch_port = free_port(), free_port(), free_port(), free_port()
    secret = secrets.token_urlsafe(48)
    env = {
        **os.environ,
        **FAST_CONSUMER_ENV,
        "COLUMNS": "200",
        "TARIFA_JWT_SECRET": secret,
        # The collector checks its sources every half second; a link down for 1 s is an alert.
        "TARIFA_COLLECTOR_WATCHDOG_SECONDS": "0.5",
        "TARIFA_COLLECTOR_LINK_GRACE_SECONDS": "1",
        "TARIFA_COLLECTOR_RECONCILE_SECONDS": "0.5",
        "TARIFA_COLLECTOR_SMDR_BIND_HOST": "127.0.0.1",
        # The notifier mails through the test's SMTP server and tells a group's change within a second.
        "TARIFA_NOTIFIER_SMTP_HOST": "127.0.0.1",
        "TARIFA_NOTIFIER_SMTP_PORT": str(mailbox[1]),
        "TARIFA_NOTIFIER_SMTP_FROM": "tarifa@e2e.example",
        "TARIFA_NOTIFIER_GROUP_WAIT_SECONDS": "0.5",
        "TARIFA_NOTIFIER_GROUP_INTERVAL_SECONDS": "1",
        "TARIFA_NOTIFIER_FLUSH_TICK_SECONDS": "0.2",
        "TARIFA_NOTIFIER_DISPATCH_TICK_SECONDS": "0.2",
        "TARIFA_VOIP_SUMMIT_OPERATION_POLL_SECONDS": "0.1",
        "SUMMIT_SIMULATOR_PASSWORD": SUMMIT_PASSWORD,
    }
    summit = await asyncio.create_subprocess_exec(
        str(TARIFA),
        "voip-summit",
        "simulator",
        "--port",
        str(summit_port),
        "--username",
        SUMMIT_USER,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    up = await asyncio.create_subprocess_exec(
        str(TARIFA),
        "up",
        "--data-dir",
        str(data_dir),
        "--broker-port",
        str(broker_port),
        "--port-offset",
        str(offset),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    summit_output: list[str] = []
    drains: list[asyncio.Task[None]] = []
    token = auth.mint(secret, subject="e2e", tenant=TENANT, roles=[auth.ADMIN])
    try:
        await _wait_for_line(up, "Ctrl-C stops everything", output, timeout=180)
        await _wait_for_line(summit, "Uvicorn running", summit_output, timeout=60)
        drains = [asyncio.ensure_future(_drain(up, output)), asyncio.ensure_future(_drain(summit, summit_output))]
        async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
            yield Platform(
                data_dir,
                f"127.0.0.1:{broker_port}",
                ports,
                summit_port,
                smdr_port,
                branch_port,
                mailbox[0],
                http,
            )
    finally:
        await _stop(up, 60)
        await _stop(summit, 10)
        for task in drains:
            task.cancel()


@pytest.fixture(scope="module")
def ubl_validator() -> UblValidator:
    return UblValidator.load()


@pytest.fixture(scope="module")
def edifact_checker() -> EdifactChecker:
    return EdifactChecker()


async def wait_until(check: Any, timeout: float = 60.0) -> Any:
    """`eventually` with the e2e's patience: five processes share two loaded cores."""
    return await eventually(check, timeout=timeout, interval=0.25)


# --- the story's data -----------------------------------------------------------------------------

PERIOD = "2026-11"
SOURCE = "pbx-hq"  # the head office: quiet period of an hour; its link will drop
BRANCH = "pbx-branch"  # a branch: quiet period of one minute (the shortest); it will fall silent
# Prices per minute in BRL; every answered call also pays the connect fee once.
TARIFF_CSV = (
    "destination;call_class;price_per_minute;reduced_price_per_minute;connect_fee\n"
    "Local;local;0.12;0.06;0.10\n"
    "Movel VC1;vc1;0.90;0.45;0.10\n"
    "Longa distancia;long_distance;0.30;0.15;0.10\n"
)
RENTAL = Decimal("49.90")  # the contract's monthly PABX rental
TAX_RATE = Decimal("12")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


@dataclass(frozen=True)
class ExpectedCall:
    """A call as the PBX logs it (local time, São Paulo) and the price worked out by hand."""

    local_start: str
    extension: str
    dialled: str
    call_class: str
    charged_seconds: int
    amount: Decimal
    band: str | None = None
    transferred: bool = False
    answered_by: str | None = None

    @property
    def started_at(self) -> datetime:
        local = datetime.strptime(self.local_start, "%Y/%m/%d %H:%M:%S").replace(tzinfo=SAO_PAULO)
        return local.astimezone(UTC)


# 2 s of talk: under 3 s, free.
UNDER_THREE = ExpectedCall("2026/11/02 09:00:00", "201", "33334444", "local", 0, Decimal("0"))
# 31 s: 30 s minimum + one 6 s step = 36 s; 0.10 + 0.12 x 36/60 = 0.10 + 0.072 = 0.172.
THIRTY_ONE = ExpectedCall("2026/11/02 09:10:00", "201", "33334444", "local", 36, Decimal("0.172"), "normal")
# 10 min 07 s to a mobile of the home area (VC1) on a Monday at 22:15, the reduced band:
# 607 s -> 30 + ceil(577 / 6) x 6 = 30 + 582 = 612 s; 0.10 + 0.45 x 612/60 = 0.10 + 4.59 = 4.69.
LONG = ExpectedCall("2026/11/02 22:15:00", "202", "987654321", "vc1", 612, Decimal("4.69"), "reduced")
# Rang 25 s, nobody answered: free.
UNANSWERED = ExpectedCall("2026/11/03 11:00:00", "202", "33335555", "local", 0, Decimal("0"))
# Two legs of one Call ID (203 talks 60 s, transfers to 204 who talks 45 s): one call of 105 s,
# one connect fee, charged to 203 (a SIP line of the contract): 30 + ceil(75 / 6) x 6 = 108 s;
# long distance, normal band: 0.10 + 0.30 x 108/60 = 0.10 + 0.54 = 0.64.
TRANSFER = ExpectedCall(
    "2026/11/03 14:00:00", "203", "0212132221111", "long_distance", 108, Decimal("0.64"), "normal", True, "204"
)
# After the period: December's, so not on November's invoice. 40 s -> 42 s: 0.10 + 0.084 = 0.184.
DECEMBER = ExpectedCall("2026/12/01 08:00:00", "201", "33334444", "local", 42, Decimal("0.184"), "normal")
# Sent when the link comes back after the outage: 60 s -> 60 s: 0.10 + 0.12 = 0.22.
AFTER_OUTAGE = ExpectedCall("2026/12/01 08:30:00", "201", "33334444", "local", 60, Decimal("0.22"), "normal")
# The branch's only call before it falls silent, 2 min: 0.10 + 0.12 x 2 = 0.34 (December's too).
BRANCH_CALL = ExpectedCall("2026/12/01 09:00:00", "202", "33337777", "local", 120, Decimal("0.34"), "normal")
# Its first call after the silence, 5 s: the 30 s minimum, 0.10 + 0.06 = 0.16.
BRANCH_BACK = ExpectedCall("2026/12/01 09:30:00", "202", "33337777", "local", 30, Decimal("0.16"), "normal")
# November's invoice, by hand: the rental, then one usage line per call class (unrounded sums
# rounded once): local 0 + 0.172 + 0 = 0.172 -> 0.17; VC1 4.69; long distance 0.64.
# Net 49.90 + 0.17 + 4.69 + 0.64 = 55.40; tax 12 % of 55.40 = 6.648 -> 6.65; total 62.05.
EXPECTED_NET, EXPECTED_TAX, EXPECTED_TOTAL = Decimal("55.40"), Decimal("6.65"), Decimal("62.05")
EXPECTED_USAGE = {"local": Decimal("0.17"), "vc1": Decimal("4.69"), "long_distance": Decimal("0.64")}


def smdr(call: ExpectedCall, call_id: int, connected: str, *, ring: int = 4, **leg: Any) -> bytes:
    """The SMDR record of (a leg of) `call`, as IP Office writes it: CRLF, 17 fields."""
    values = {"caller": call.extension, "party1": f"E{call.extension}", **leg}
    return smdr_line(call_id, start=call.local_start, connected=connected, ring=ring, dialled=call.dialled, **values)


# An extension nobody declared: its call waits, unrated, rather than being lost; once the
# extension is declared it is rated: 60 s -> 60 s, 0.10 + 0.12 = 0.22.
UNDECLARED = ExpectedCall("2026/11/04 10:00:00", "299", "33336666", "local", 60, Decimal("0.22"))
MALFORMED = b"2026/13/03 12:00:00,00:00:40,2,201,O,33334444,33334444,,0,1099,0,E201,Extn201,T9001,Line 1.1,0,0\r\n"


def smdr_records() -> list[bytes]:
    """The head office's feed: one record per leg, in the order the legs ended."""
    return [
        smdr(UNDER_THREE, 1001, "00:00:02", ring=3),
        smdr(THIRTY_ONE, 1002, "00:00:31", ring=5),
        smdr(LONG, 1003, "00:10:07", ring=6),
        smdr(UNANSWERED, 1004, "00:00:00", ring=25),
        MALFORMED,  # mangled on the wire: month 13
        smdr(TRANSFER, 1005, "00:01:00", continuation=1),  # 203's leg; more legs follow
        smdr(TRANSFER, 1005, "00:00:45", ring=9, caller="204", party1="E204"),  # 204's, the last
        smdr(UNDECLARED, 1006, "00:01:00"),
        smdr(DECEMBER, 1007, "00:00:40"),
    ]


AFTER_OUTAGE_RECORD = smdr(AFTER_OUTAGE, 1008, "00:01:00")


class PbxLink:
    """IP Office as the TCP client of our SMDR listener: one long-lived connection, as it keeps."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.writer: asyncio.StreamWriter | None = None
        self.records_sent = 0  # valid records (legs)
        self.malformed_sent = 0
        self.calls_sent = 0  # calls those records make (a transfer's legs are one call)

    async def connect(self) -> None:
        _, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def send(self, records: list[bytes], *, calls: int, malformed: int = 0) -> None:
        await self.resend(records)
        self.records_sent += len(records) - malformed
        self.malformed_sent += malformed
        self.calls_sent += calls

    async def resend(self, records: list[bytes]) -> None:
        """Send records again (IP Office re-sends what it could not confirm): nothing new to count."""
        assert self.writer is not None
        self.writer.write(b"".join(records))
        await self.writer.drain()

    async def disconnect(self) -> None:
        assert self.writer is not None
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
        self.writer = None


@dataclass
class Seed:
    customer_id: str
    contract_id: str
    sip_lines: list[str]


@pytest_asyncio.fixture(scope="module")
async def seeded(platform: Platform) -> Seed:
    """Step 1: the tenant, seeded through each owner's HTTP API."""
    p = platform
    await p.send(
        "PUT",
        "invoicer",
        "/v1/billing-profile",
        200,
        json={
            "seller_name": "Tarifa Telecom Ltda",
            "seller_vat_id": "BR12345678000195",
            "seller_street": "Avenida Paulista 1000",
            "seller_city": "São Paulo",
            "seller_postcode": "01310-100",
            "seller_country": "BR",
            "seller_endpoint": "0088:5790000435975",
            "seller_gln": "5790000435975",
            "default_tax_rate": str(TAX_RATE),
            "currency": "BRL",
            "series": "F",
            "credit_series": "CN",
            "time_zone": "America/Sao_Paulo",
        },
    )
    customer = await p.send(
        "POST",
        "invoicer",
        "/v1/customers",
        201,
        json={
            "name": "Hotel Paulista",
            "tax_id": "BR98765432000110",
            "street": "Rua Augusta 500",
            "city": "São Paulo",
            "postcode": "01305-000",
            "country": "BR",
            "emails": ["contas@hotelpaulista.example"],
            "edi_format": "edifact",
            "gln": "3012345000017",
        },
    )
    contract = await p.send(
        "POST",
        "invoicer",
        "/v1/contracts",
        201,
        json={"customer_id": customer["id"], "due_day": 10, "starts_on": "2026-11-01"},
    )
    await p.send(
        "POST",
        "invoicer",
        f"/v1/contracts/{contract['id']}/charges",
        201,
        json={"description": "PABX rental", "amount": str(RENTAL), "recurring": True, "starts_on": "2026-11-01"},
    )
    for extension in ("201", "202"):
        await p.send(
            "POST",
            "invoicer",
            f"/v1/contracts/{contract['id']}/lines",
            201,
            json={"line_id": extension, "assigned_on": "2026-11-01"},
        )

    await p.send(
        "PUT",
        "rater",
        "/v1/tariffs/br-standard/versions/2026-01-01T00:00:00-03:00",
        200,
        params={"currency": "BRL"},
        content=TARIFF_CSV,
        headers={"Content-Type": "text/csv"},
    )
    await p.send("PUT", "rater", "/v1/tariff-assignments/tenant/*", 200, json={"plan_code": "br-standard"})
    await p.send("PUT", "rater", "/v1/numbering/*", 200, json={"country_code": "55", "home_area_code": "11"})
    for extension, cost_centre in (("201", "front-desk"), ("202", "kitchen")):
        await p.send(
            "PUT",
            "rater",
            f"/v1/extensions/{extension}",
            200,
            json={"customer_id": customer["id"], "contract_id": contract["id"], "cost_centre": cost_centre},
        )

    integration = await p.send(
        "POST",
        "voip-summit",
        "/v1/integrations",
        201,
        json={
            "description": "Summit São Paulo",
            "access_user": SUMMIT_USER,
            "access_password": SUMMIT_PASSWORD,
            "access_url": "cdr.summit.example",
            "access_port": 22,
            "api_host": "127.0.0.1",
            "api_port": p.summit_port,
            "cdr_directory": "/var/summit/cdr",
            "catalogue_mode": "local",
        },
    )
    for path, body in (
        (
            "/v1/partitions",
            {
                "code": "SP-CAPITAL",
                "description": "São Paulo capital",
                "blocking_enabled": True,
                "default_category": "LIVRE",
                "block_category": "BLOQ",
                "partial_block_category": "PARC",
                "cancellation_category": "CANC",
            },
        ),
        ("/v1/catalogue/plans", {"code": "FIXO-100", "description": "Fixo 100 minutos"}),
        ("/v1/catalogue/licences", {"code": "BASIC", "description": "Básica"}),
        ("/v1/catalogue/cost-centres", {"code": "Default"}),
        ("/v1/number-ranges", {"name": "SP", "prefix": "5511", "first": "30000000", "last": "30000099"}),
    ):
        await p.send("POST", "voip-summit", path, 201, json=body)
    sip_lines = []
    for number, extension in (("+551130000001", "203"), ("+551130000002", None)):
        line = await p.send(
            "POST",
            "voip-summit",
            "/v1/lines",
            201,
            json={
                "contract_id": contract["id"],
                "integration_id": integration["id"],
                "number": number,
                "extension": extension,
                "partition": "SP-CAPITAL",
                "category": "LIVRE",
                "plan": "FIXO-100",
                "licence": "BASIC",
                "activation_date": "2026-11-01",
                "due_day": 10,
                "city": "São Paulo",
            },
        )
        sip_lines.append(line["id"])

    for source_id, port, quiet_minutes in ((SOURCE, p.smdr_port, 60), (BRANCH, p.branch_port, 1)):
        await p.send(
            "POST",
            "collector",
            "/v1/sources",
            201,
            json={
                "id": source_id,
                "kind": "smdr_listener",
                "format": "avaya_smdr",
                "time_zone": "America/Sao_Paulo",
                "host": "127.0.0.1",
                "port": port,
                "quiet_minutes": quiet_minutes,
            },
        )
    recipient = await p.send("POST", "notifier", "/v1/recipients", 201, json={"name": "Ana Souza", "email": RECIPIENT})
    await p.send(
        "POST",
        "notifier",
        f"/v1/recipients/{recipient['id']}/responsibilities",
        201,
        json={"object_kind": "source", "object_id": "*"},  # every source of the tenant
    )

    async def provisioned_and_known() -> None:
        for line_id in sip_lines:
            line = await p.get("voip-summit", f"/v1/lines/{line_id}")
            assert line["sync_status"] == "applied", line
        # line.events reached the rater: extension 203 is the SIP line's, and its contract's.
        directory = {e["extension"]: e for e in await p.get("rater", "/v1/extensions")}
        assert directory.get("203", {}).get("line_id") == sip_lines[0], directory
        assert directory["203"]["contract_id"] == contract["id"]
        for source_id in (SOURCE, BRANCH):
            source = await p.get("collector", f"/v1/sources/{source_id}")
            assert source["health"]["connection"] == "listening", source

    await wait_until(provisioned_and_known, timeout=90)
    return Seed(customer["id"], contract["id"], sip_lines)


@pytest_asyncio.fixture(scope="module")
async def pbx(platform: Platform, seeded: Seed) -> PbxLink:
    """Step 2's input: the SMDR feed over a real TCP connection, IP Office connecting to us."""
    link = PbxLink(platform.smdr_port)
    await link.connect()
    await link.send(smdr_records(), calls=7, malformed=1)
    return link


@pytest_asyncio.fixture(scope="module")
async def branch(platform: Platform, seeded: Seed) -> PbxLink:
    """The branch's IP Office: connected, one call, then silence (its link stays up)."""
    link = PbxLink(platform.branch_port)
    await link.connect()
    await link.send([smdr(BRANCH_CALL, 2001, "00:02:00")], calls=1)
    return link


async def rated_calls(platform: Platform) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = await platform.get(
        "rater", "/v1/rated-calls", start="2026-10-01T00:00:00Z", end="2027-01-01T00:00:00Z", limit=1000
    )
    return calls


# --- the story ------------------------------------------------------------------------------------


async def test_smdr_calls_over_tcp_are_rated_at_the_prices_worked_out_by_hand(
    platform: Platform, seeded: Seed, pbx: PbxLink, branch: PbxLink
) -> None:
    expected = [UNDER_THREE, THIRTY_ONE, LONG, UNANSWERED, TRANSFER, DECEMBER, BRANCH_CALL]

    async def all_rated() -> list[dict[str, Any]]:
        calls = await rated_calls(platform)
        assert len(calls) == len(expected), calls
        return calls

    calls = await wait_until(all_rated, timeout=90)
    by_start = {datetime.fromisoformat(c["started_at"]): c for c in calls}
    assert set(by_start) == {e.started_at for e in expected}
    for want in expected:
        got = by_start[want.started_at]
        where = f"call of {want.local_start}"
        assert got["extension"] == want.extension, where
        assert got["call_class"] == want.call_class, where
        assert got["charged_seconds"] == want.charged_seconds, where
        assert Decimal(got["amount"]) == want.amount, (where, got["amount"])
        assert got["currency"] == "BRL", where
        assert got["contract_id"] == seeded.contract_id, where
        assert got["transferred"] is want.transferred, where
        if want.band is not None:
            assert got["band"] == want.band, where
        if want.answered_by is not None:
            assert got["answered_by"] == want.answered_by, where
    assert by_start[TRANSFER.started_at]["billable_seconds"] == 105  # both legs' talk time
    assert by_start[TRANSFER.started_at]["line_id"] == seeded.sip_lines[0]

    (waiting,) = await platform.get("rater", "/v1/unrated-calls")
    assert (waiting["extension"], waiting["reason"]) == (UNDECLARED.extension, "unknown_extension")
    assert datetime.fromisoformat(waiting["started_at"]) == UNDECLARED.started_at


@pytest_asyncio.fixture(scope="module")
async def invoice(platform: Platform, seeded: Seed, pbx: PbxLink) -> dict[str, Any]:
    """Step 3: the billing run for November, through the invoicer's API, once the rater has published the calls.

    Each hop has its check: the collector's watermark covers the PBX, the invoicer's own pre-check
    (`rated_calls_caught_up`) the hop from `cdr.rated` into the invoicer: a run waits until the
    invoicer has stored what was on the topic when it started. Between the two, the rater rates and
    publishes on its own time. So the test waits, as a plain Kafka reader, until every call the
    rater shows as rated is on `cdr.rated`, then bills at once: a dry run (it issues nothing and
    tells what would be billed), then the run. A call that arrives after its period was invoiced
    is not lost either: it waits, unbilled, for the contract's next invoice.
    """

    sent = {call.started_at for call in (UNDER_THREE, THIRTY_ONE, LONG, UNANSWERED, TRANSFER, DECEMBER)}

    async def rated_calls_published() -> None:
        calls = await rated_calls(platform)
        rated = {call["record_id"] for call in calls if datetime.fromisoformat(call["started_at"]) in sent}
        assert len(rated) == len(sent), calls  # every call the head office's PBX sent (the fixture `pbx`)
        records = await read_all(platform.bootstrap, "cdr.rated", expected=len(rated), timeout=5)
        published = {json.loads(record.value)["record_id"] for record in records}
        assert rated <= published, rated - published

    await wait_until(rated_calls_published, timeout=90)
    dry = await platform.send("POST", "invoicer", "/v1/billing-runs", 202, json={"period": PERIOD, "dry_run": True})
    body = await finished_run(platform, dry["id"])
    assert [c for c in body["checks"] if c["check"] == "rated_calls_caught_up"] == [], body
    assert Decimal(body["net"]) == EXPECTED_NET, body
    assert await platform.get("invoicer", "/v1/invoices", period=PERIOD) == []  # dry runs issue nothing
    run = await platform.send(
        "POST", "invoicer", "/v1/billing-runs", 202, json={"period": PERIOD, "issue_date": "2026-12-01"}
    )
    done = await finished_run(platform, run["id"])
    assert (done["issued"], done["total"]) == (1, 1), done
    (issued,) = await platform.get("invoicer", "/v1/invoices", period=PERIOD)
    result: dict[str, Any] = issued
    return result


async def finished_run(platform: Platform, run_id: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any]:
        body: dict[str, Any] = await platform.get("invoicer", f"/v1/billing-runs/{run_id}")
        assert body["status"] not in ("running", "pending"), body
        return body

    done = await wait_until(finished, timeout=60)
    assert done["status"] == "finished", done
    return done


async def test_the_invoice_equals_the_rated_calls_plus_charges_plus_tax_to_the_cent(
    platform: Platform, seeded: Seed, invoice: dict[str, Any]
) -> None:
    assert (invoice["customer_id"], invoice["contract_id"]) == (seeded.customer_id, seeded.contract_id)
    assert (invoice["number"], invoice["currency"]) == ("F-000001", "BRL")
    assert (Decimal(invoice["net"]), Decimal(invoice["tax"]), Decimal(invoice["total"])) == (
        EXPECTED_NET,
        EXPECTED_TAX,
        EXPECTED_TOTAL,
    )
    # The same figures from the other side: the rater's November total (rounded once) and the charge.
    (november,) = await platform.get(
        "rater",
        "/v1/rated-calls/totals",
        group_by="month",
        start="2026-11-01T00:00:00-03:00",
        end="2026-12-01T00:00:00-03:00",
    )
    assert Decimal(november["amount"]) == Decimal("5.50")  # 0.172 + 4.69 + 0.64 = 5.502
    assert Decimal(november["amount"]) + RENTAL == EXPECTED_NET
    detail = await platform.get("invoicer", f"/v1/invoices/{invoice['id']}")
    lines = {(line["kind"], line["call_class"]): line for line in detail["lines"]}
    assert set(lines) == {("recurring", None)} | {("usage", name) for name in EXPECTED_USAGE}
    assert Decimal(lines["recurring", None]["net"]) == RENTAL
    for call_class, net in EXPECTED_USAGE.items():
        assert Decimal(lines["usage", call_class]["net"]) == net, call_class
    # local: the free 2 s call, the 31 s call (36 s charged) and the unanswered one.
    assert (lines["usage", "local"]["calls"], lines["usage", "local"]["seconds"]) == (3, 36)
    assert Decimal(lines["usage", "local"]["amount"]) == Decimal("0.172")  # kept unrounded, rounded once
    assert (lines["usage", "long_distance"]["calls"], lines["usage", "long_distance"]["seconds"]) == (1, 108)

    # Nothing billed twice: a second run for the period issues nothing.
    again = await platform.send("POST", "invoicer", "/v1/billing-runs", 202, json={"period": PERIOD})
    second = await finished_run(platform, again["id"])
    assert (second["issued"], second["skipped"]) == (0, 1), second
    assert [i["number"] for i in await platform.get("invoicer", "/v1/invoices", period=PERIOD)] == ["F-000001"]


async def test_the_invoice_documents_pass_the_ubl_and_edifact_checks(
    platform: Platform, invoice: dict[str, Any], ubl_validator: UblValidator, edifact_checker: EdifactChecker
) -> None:
    ubl = await platform.http.get(platform.url("invoicer", f"/v1/invoices/{invoice['id']}/ubl"))
    assert ubl.status_code == 200, ubl.text
    assert ubl_validator.errors(ubl.content) == []
    document = etree.fromstring(ubl.content)
    payable = document.findtext(".//{*}LegalMonetaryTotal/{*}PayableAmount")
    assert payable is not None and Decimal(payable) == EXPECTED_TOTAL

    edifact = await platform.http.get(platform.url("invoicer", f"/v1/invoices/{invoice['id']}/edifact"))
    assert edifact.status_code == 200, edifact.text
    interchange = edifact.content.decode("latin-1")  # the UNB's syntax UNOC is ISO 8859-1, as an ERP reads it
    assert "UNB+UNOC:3" in interchange
    assert edifact_checker.errors(interchange) == []
    assert f"MOA+77:{EXPECTED_TOTAL}" in interchange  # EANCOM 77: the invoice amount

    pdf = await platform.http.get(platform.url("invoicer", f"/v1/invoices/{invoice['id']}/pdf"))
    assert pdf.status_code == 200, pdf.text
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Invoice F-000001" in text and f"{EXPECTED_TOTAL} BRL" in text
    assert "Call detail (5 calls)" in text  # November's five calls; the unrated one is on no invoice


async def test_an_erp_reads_invoice_issued_with_a_plain_kafka_consumer(
    platform: Platform, seeded: Seed, invoice: dict[str, Any]
) -> None:
    records = await read_all(platform.bootstrap, "invoice.issued", expected=1, timeout=30)
    # At-least-once: a copy is allowed on the bus, a second invoice is not.
    assert len({dict(r.headers)["ce_id"] for r in records}) == 1, records
    record = records[0]
    headers = {key: value.decode() for key, value in record.headers}
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_type"] == "tarifa.invoice.issued.v1"
    assert headers["ce_tenant"] == TENANT
    assert headers["ce_source"] and headers["ce_id"] and headers["ce_subject"]
    assert datetime.fromisoformat(headers["ce_time"]).tzinfo is not None
    assert headers["content-type"].startswith("application/json")
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", headers["traceparent"])
    assert record.key == seeded.customer_id.encode()
    data = json.loads(record.value)
    assert (data["invoice_id"], data["number"], data["customer_id"]) == (
        invoice["id"],
        "F-000001",
        seeded.customer_id,
    )
    assert (Decimal(data["net"]), Decimal(data["tax"]), Decimal(data["total"])) == (
        EXPECTED_NET,
        EXPECTED_TAX,
        EXPECTED_TOTAL,
    )


async def test_an_overdue_contract_blocks_its_lines_on_summit_and_a_release_restores_them(
    platform: Platform, seeded: Seed
) -> None:
    async def categories_on_summit(wanted: str) -> None:
        terminals = {t["external_id"]: t for t in await platform.summit_terminals()}
        assert [terminals[line]["category"] for line in seeded.sip_lines] == [wanted, wanted], terminals

    async def partially_blocked() -> None:
        await categories_on_summit("PARC")

    async def released() -> None:
        await categories_on_summit("LIVRE")

    await released()
    await platform.send(
        "POST",
        "invoicer",
        f"/v1/contracts/{seeded.contract_id}/status",
        200,
        json={"status": "financially_overdue", "reason": "invoice F-000001 unpaid"},
    )
    await wait_until(partially_blocked, timeout=60)
    for line_id in seeded.sip_lines:
        assert (await platform.get("voip-summit", f"/v1/lines/{line_id}"))["blocked"] is True

    await platform.send(
        "POST", "invoicer", f"/v1/contracts/{seeded.contract_id}/status", 200, json={"status": "released"}
    )
    await wait_until(released, timeout=60)
    for line_id in seeded.sip_lines:
        assert (await platform.get("voip-summit", f"/v1/lines/{line_id}"))["blocked"] is False


def mails_about(platform: Platform, source_id: str, prefix: str) -> list[EmailMessage]:
    """Messages the recipient got about one source, by subject (`[IMPORTANT] …`, `[RESOLVED] …`)."""
    return [
        message
        for message in platform.mailbox.messages
        if message["To"] == RECIPIENT
        and message["Subject"].startswith(prefix)
        and f"source {source_id}:" in message["Subject"]
    ]


async def one_mail(platform: Platform, source_id: str, prefix: str) -> EmailMessage:
    async def arrived() -> EmailMessage:
        found = mails_about(platform, source_id, prefix)
        assert len(found) == 1, [m["Subject"] for m in platform.mailbox.messages]
        return found[0]

    mail: EmailMessage = await wait_until(arrived, timeout=90)
    return mail


async def test_a_dropped_pbx_link_is_mailed_as_important_and_its_return_as_resolved(
    platform: Platform, pbx: PbxLink
) -> None:
    assert mails_about(platform, SOURCE, "[IMPORTANT]") == []
    await pbx.disconnect()
    alert = await one_mail(platform, SOURCE, "[IMPORTANT]")
    assert "link" in alert["Subject"].lower(), alert["Subject"]

    # IP Office reconnects, re-sends the buffer it could not confirm (already archived: no-ops),
    # then the call that ended meanwhile.
    await pbx.connect()
    await pbx.resend([record for record in smdr_records() if record != MALFORMED])
    await pbx.send([AFTER_OUTAGE_RECORD], calls=1)
    await one_mail(platform, SOURCE, "[RESOLVED]")
    alerts = await platform.get("notifier", "/v1/alerts", object_kind="source", object_id=SOURCE)
    assert [(a["severity"], a["status"]) for a in alerts] == [("important", "resolved")], alerts
    assert len(mails_about(platform, SOURCE, "[IMPORTANT]")) == 1  # told once


async def test_a_source_silent_past_its_quiet_period_is_mailed_and_resolved_when_records_flow_again(
    platform: Platform, branch: PbxLink
) -> None:
    # The branch sent one call at the start and nothing since, its link still up: after its
    # quiet period (one minute) the collector raises an important alert, mailed to Ana.
    alert = await one_mail(platform, BRANCH, "[IMPORTANT]")
    assert "No call records" in alert["Subject"], alert["Subject"]
    assert (await platform.get("collector", f"/v1/sources/{BRANCH}"))["health"]["silent"] is True

    await branch.send([smdr(BRANCH_BACK, 2002, "00:00:05")], calls=1)
    await one_mail(platform, BRANCH, "[RESOLVED]")
    assert (await platform.get("collector", f"/v1/sources/{BRANCH}"))["health"]["silent"] is False


async def test_every_call_sent_is_accounted_for_as_rated_unrated_or_rejected(
    platform: Platform, seeded: Seed, pbx: PbxLink, branch: PbxLink
) -> None:
    # Runs last: it counts whatever the earlier steps sent (the calls after the outages included).
    calls_sent = pbx.calls_sent + branch.calls_sent
    for source_id, link in ((SOURCE, pbx), (BRANCH, branch)):
        health = (await platform.get("collector", f"/v1/sources/{source_id}"))["health"]
        assert (health["records_total"], health["rejects_total"]) == (link.records_sent, link.malformed_sent)

    async def settled() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rated = await rated_calls(platform)
        unrated = await platform.get("rater", "/v1/unrated-calls")
        assert len(rated) + len(unrated) == calls_sent, (rated, unrated)
        return rated, unrated

    rated, unrated = await wait_until(settled, timeout=60)
    assert len(unrated) == 1  # extension 299's call, waiting for someone to declare it
    assert sum(Decimal(c["amount"]) for c in rated) == (
        UNDER_THREE.amount
        + THIRTY_ONE.amount
        + LONG.amount
        + UNANSWERED.amount
        + TRANSFER.amount
        + DECEMBER.amount
        + AFTER_OUTAGE.amount
        + BRANCH_CALL.amount
        + BRANCH_BACK.amount
    )  # each call rated once: the re-sent buffer doubled nothing

    # The bus tells the same story to anyone who reads it: one collected event per call, keyed
    # by its source, and one rejection naming the field.
    collected = await read_all(platform.bootstrap, "cdr.raw", expected=calls_sent, timeout=20)
    events = {(record.key, dict(record.headers)["ce_id"]) for record in collected}  # copies are allowed
    assert Counter(key for key, _ in events) == {SOURCE.encode(): pbx.calls_sent, BRANCH.encode(): branch.calls_sent}
    (rejection,) = await read_all(platform.bootstrap, "cdr.rejected", expected=1, timeout=20)
    assert "Call Start" in json.loads(rejection.value)["reason"]

    # The waiting call is not lost: declaring its extension rates it.
    await platform.send(
        "PUT",
        "rater",
        f"/v1/extensions/{UNDECLARED.extension}",
        200,
        json={"customer_id": seeded.customer_id, "contract_id": seeded.contract_id},
    )

    async def rated_once_declared() -> dict[str, Any]:
        assert await platform.get("rater", "/v1/unrated-calls") == []
        found = [c for c in await rated_calls(platform) if c["extension"] == UNDECLARED.extension]
        assert len(found) == 1, found
        return found[0]

    late = await wait_until(rated_once_declared, timeout=30)
    assert (late["charged_seconds"], Decimal(late["amount"])) == (UNDECLARED.charged_seconds, UNDECLARED.amount)
