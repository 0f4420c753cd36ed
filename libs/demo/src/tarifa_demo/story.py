"""The demo's story: a month of calls collected and rated, a silent PBX, billing, an overdue school.

Every step prints what happened and where to look. Waiting is polling with a deadline; a step
that does not come true in time fails with what it saw, and the platform keeps running.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console

from tarifa_collector.fake_ipoffice import FakeIpOffice
from tarifa_common import topics
from tarifa_demo import scenario
from tarifa_demo.api import Apis, DemoStepFailed, NotYet, until
from tarifa_demo.seed import DemoPorts, Seeded, seed
from tarifa_demo.sinks import SummitSink

FINISHED = "The demo story is finished"


@dataclass(frozen=True, slots=True)
class DemoPaths:
    root: Path

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    @property
    def sms(self) -> Path:
        return self.root / "sms"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def drop(self) -> Path:
        return self.root / "asterisk-drop"

    @property
    def summit_state(self) -> Path:
        return self.root / "summit-state.json"


class Story:
    def __init__(
        self,
        apis: Apis,
        console: Console,
        paths: DemoPaths,
        ports: DemoPorts,
        bootstrap_servers: str,
        pbx: FakeIpOffice,
    ) -> None:
        self.apis = apis
        self.pbx = pbx
        self.console = console
        self.paths = paths
        self.ports = ports
        self.bootstrap_servers = bootstrap_servers
        self.zone = ZoneInfo(scenario.TIME_ZONE)
        self.now = datetime.now(self.zone)
        self.today = self.now.date()
        self.period_start, self.period_end = scenario.previous_month(self.today)
        self.period = self.period_start.strftime("%Y-%m")
        self.rated_before = self.rated_now = 0
        self.began = datetime.now(UTC)

    def say(self, text: str) -> None:
        self.console.print(f"[bold cyan]demo[/] {text}", highlight=False)

    async def run(self) -> None:
        started = time.monotonic()
        self.say(f"seeding tenant [bold]{scenario.TENANT}[/] through the services' APIs…")
        seeded = await seed(self.apis, today=self.today, ports=self.ports, drop_directory=self.paths.drop)
        if seeded.created:
            self.say(f"created {len(seeded.created)} things: " + "; ".join(seeded.created))
        else:
            self.say("already seeded (nothing created: a second run changes nothing)")
        expected = await self.send_calls()
        await self.wait_rated(expected)
        await self.bill()
        await self.overdue_and_release(seeded)
        await self.urgent_alert_by_sms(seeded)
        await self.silent_source_alert()
        self.say(f"[bold green]{FINISHED}[/] in {time.monotonic() - started:.0f}s.")
        self.where_to_look()

    # --- calls ------------------------------------------------------------------------------

    @property
    def window(self) -> dict[str, str]:
        """From the first day of the previous month to the end of today, in the tenant's time zone."""
        return {
            "start": datetime.combine(self.period_start, datetime.min.time(), self.zone).isoformat(),
            "end": datetime.combine(self.today + timedelta(days=1), datetime.min.time(), self.zone).isoformat(),
        }

    async def rated_count(self) -> int:
        return len(await self.apis.rater.get("/rated-calls", params={**self.window, "limit": 5000}))

    async def send_calls(self) -> int:
        self.rated_before = await self.rated_count()
        calls = scenario.pbx_calls(self.today, self.now.hour)
        records = scenario.smdr_records(calls)

        async def connected() -> None:
            health = (await self.apis.collector.get("/sources/pbx-hotel"))["health"]
            if health["connection"] != "connected" or not self.pbx.connections:
                raise NotYet(f"pbx-hotel is {health['connection']}: {health.get('last_error')}")

        await until(connected, what="the collector connected to the hotel's IP Office", timeout=60, interval=0.5)
        await self.pbx.emit(*records)
        notes = Counter(call.note for call in calls if call.note)
        self.say(
            f"PBX simulator (Avaya IP Office SMDR over TCP on 127.0.0.1:{self.ports.smdr_hotel}, collector connected): "
            f"{len(records)} records, {len(calls)} calls of {self.period} and today; among them "
            + ", ".join(f"{count} {note}" for note, count in notes.items())
        )
        self.paths.drop.mkdir(parents=True, exist_ok=True)
        partial = self.paths.drop / ".Master.csv.part"
        partial.write_text(scenario.asterisk_master_csv(self.today))
        partial.rename(self.paths.drop / f"Master-{self.period}.csv")
        self.say(f"Asterisk Master.csv with {scenario.ASTERISK_CALLS} calls dropped in {self.paths.drop}")
        self.paths.root.joinpath("asterisk-sample.csv").write_text(scenario.asterisk_sample_csv(self.today))
        return len(calls) + scenario.ASTERISK_CALLS

    async def wait_rated(self, expected: int) -> None:
        window = self.window
        last = -1

        async def all_accounted() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            nonlocal last
            rated = await self.apis.rater.get("/rated-calls", params={**window, "limit": 5000})
            unrated = await self.apis.rater.get("/unrated-calls", params={"limit": 5000})
            seen = len(rated) + len(unrated)
            if seen != last:
                self.say(f"rating: {len(rated)} rated, {len(unrated)} waiting, of {expected} calls sent")
                last = seen
            if seen < expected:
                raise NotYet(f"{len(rated)} rated and {len(unrated)} waiting of {expected}")
            return rated, unrated

        rated, unrated = await until(all_accounted, what="every call rated", timeout=120)
        self.rated_now = len(rated) - self.rated_before
        by_class = await self.apis.rater.get("/rated-calls/totals", params={**window, "group_by": "call_class"})
        self.say(
            "rated by class: "
            + ", ".join(f"{t['key']} {t['calls']} calls {t['currency']} {t['amount']}" for t in by_class)
        )
        out_of_class = [c for c in rated if c["out_of_class"]]
        free = [c for c in rated if c["billable_seconds"] and c["billable_seconds"] < 3]
        transferred = [c for c in rated if c["transferred"]]
        self.say(
            f"{len(out_of_class)} call(s) outside the extension's class of service (alert raised), "
            f"{len(free)} under 3 s (free), {len(transferred)} transferred (one call, both legs)"
        )
        for call in unrated:
            self.say(f"waiting: {call['dialled']} from {call['extension']}: {call['reason']} ({call['detail']})")

    # --- billing -------------------------------------------------------------------------------

    async def wait_invoicer_caught_up(self) -> None:
        """The invoicer has stored this run's rated calls once its group committed as many `cdr.rated` offsets.

        The invoicer commits offsets only after its transaction, and the embedded broker is new with
        each `tarifa up`, so the group's committed offsets count the events it stored in this run.
        (The topic's end offsets are not used: the embedded broker answered some below the committed ones.)
        """
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            # Named partitions: the embedded broker cannot decode the "every topic" form of the request.
            partitions = [TopicPartition(topics.CDR_RATED.name, p) for p in range(topics.CDR_RATED.partitions)]

            async def caught_up() -> None:
                committed = await admin.list_consumer_group_offsets("invoicer", partitions=partitions)
                stored = sum(max(meta.offset, 0) for meta in committed.values())
                if stored < self.rated_now:
                    raise NotYet(f"{stored} of {self.rated_now} rated call event(s) stored by the invoicer")

            await until(caught_up, what="the invoicer reading every rated call", timeout=60)
        finally:
            await admin.close()

    async def bill(self) -> None:
        await self.wait_invoicer_caught_up()
        self.say(f"billing run for {self.period}…")
        run = await self.apis.invoicer.post("/billing-runs", {"period": self.period})
        last = (-1, -1)

        async def finished() -> dict[str, Any]:
            nonlocal last
            body: dict[str, Any] = await self.apis.invoicer.get(f"/billing-runs/{run['id']}")
            if (body["done"], body["total"]) != last and body["total"]:
                last = (body["done"], body["total"])
                self.say(f"billing: {body['done']}/{body['total']} contracts")
            if body["status"] == "running":
                raise NotYet(f"{body['done']} of {body['total']} contracts")
            return body

        outcome = await until(finished, what="the billing run", timeout=120, interval=0.5)
        if outcome["status"] != "finished":
            raise DemoStepFailed(f"the billing run ended {outcome['status']}: {outcome.get('error')}")
        for finding in outcome["checks"]:
            self.say(f"pre-check {finding['check']}: {finding['object_id']} {finding['detail']}")
        invoices = await self.apis.invoicer.get("/invoices", params={"period": self.period})
        self.say(
            f"billing run: {outcome['issued']} issued now, {outcome['skipped']} skipped "
            f"(already issued or not billable); {len(invoices)} invoice(s) for {self.period}"
        )
        folder = self.paths.output / self.period
        folder.mkdir(parents=True, exist_ok=True)
        customers = {c["id"]: c["name"] for c in await self.apis.invoicer.get("/customers")}
        for invoice in invoices:
            for kind, suffix in (("pdf", "pdf"), ("ubl", "xml"), ("edifact", "edi")):
                content = await self.apis.invoicer.download(f"/invoices/{invoice['id']}/{kind}")
                (folder / f"{invoice['number']}.{suffix}").write_bytes(content)
            self.say(
                f"invoice {invoice['number']} {customers.get(invoice['customer_id'], '?')}: net {invoice['net']} "
                f"+ tax {invoice['tax']} = {invoice['currency']} {invoice['total']}  (.pdf, .xml UBL, .edi EDIFACT)"
            )
        self.say(f"invoices written to {folder}")

    # --- Summit blocking ----------------------------------------------------------------------

    async def terminal_categories(self, seeded: Seeded) -> dict[str, str]:
        school = [line.number for line in scenario.SIP_LINES if line.customer == scenario.SCHOOL]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.ports.summit}/api/v1",
            auth=(SummitSink.USERNAME, SummitSink.PASSWORD),
            timeout=10,
        ) as summit:
            found = {}
            for number in school:
                answer = (await summit.get("/terminals", params={"external_id": seeded.lines[number]})).json()
                found[number] = answer[0]["category"] if answer else "missing"
            return found

    async def overdue_and_release(self, seeded: Seeded) -> None:
        contract = seeded.contracts[scenario.SCHOOL]
        current = (await self.apis.invoicer.get(f"/contracts/{contract}"))["status"]

        async def categories_are(wanted: str) -> dict[str, str]:
            found = await self.terminal_categories(seeded)
            if set(found.values()) != {wanted}:
                raise NotYet(f"categories on Summit: {found}")
            return found

        await until(lambda: categories_are("LIVRE"), what="the school's lines provisioned on Summit", timeout=60)
        if current != "financially_overdue":
            await self.apis.invoicer.post(
                f"/contracts/{contract}/status",
                {"status": "financially_overdue", "reason": f"invoice of {self.period} unpaid after the due date"},
            )
        self.say(f"contract of {scenario.SCHOOL} is financially overdue (published on contract.status)…")
        found = await until(lambda: categories_are("PARC"), what="the overdue lines partly blocked", timeout=60)
        self.say(f"Summit simulator: lines {', '.join(found)} moved to the partial-block category PARC")
        await self.apis.invoicer.post(f"/contracts/{contract}/status", {"status": "released", "reason": "paid"})
        found = await until(lambda: categories_are("LIVRE"), what="the released lines restored", timeout=60)
        self.say(f"contract released: lines {', '.join(found)} back to LIVRE on the Summit simulator")

    # --- alerts --------------------------------------------------------------------------------

    async def urgent_alert_by_sms(self, seeded: Seeded) -> None:
        hotel_line = next(line.number for line in scenario.SIP_LINES if line.customer == scenario.HOTEL)
        alert = await self.apis.notifier.post(
            "/alerts",
            {
                "fingerprint": "demo/trunk-down/hotel-sip-trunk",
                "severity": "urgent",
                "source_kind": "client_system",
                "object": {"kind": "line", "id": seeded.lines[hotel_line]},
                "summary": "Hotel Paulista: SIP trunk down (raised by the demo through POST /v1/alerts)",
            },
        )
        self.say("an urgent alert was raised through POST /v1/alerts: it goes by e-mail and SMS…")
        raised_at = time.time() - 1

        async def texted() -> Path:
            for path in sorted(self.paths.sms.glob("*.txt")):
                if path.stat().st_mtime >= raised_at and "SIP trunk down" in path.read_text():
                    return path
            raise NotYet("no SMS about the SIP trunk yet")

        path = await until(texted, what="the urgent alert's SMS", timeout=90)
        self.say(f"SMS sink received it: {path}")
        await self.apis.notifier.post(f"/alerts/{alert['id']}/resolve")

    async def silent_source_alert(self) -> None:
        self.say("pbx-branch, a branch PBX that never sends anything, raises a silence alert after 1 minute…")

        waiting_since = time.monotonic()
        told = 0.0

        async def mailed() -> Path:
            nonlocal told
            if time.monotonic() - told > 15:
                told = time.monotonic()
                self.say(f"… waiting for the silence alert ({told - waiting_since:.0f}s)")
            for path in sorted(self.paths.mail.glob("*.eml")):
                message = message_from_bytes(path.read_bytes(), policy=default)
                if "pbx-branch" in str(message["Subject"]) + message.get_body(("plain",)).get_content():  # type: ignore[union-attr]
                    return path
            raise NotYet("no e-mail about pbx-branch in the mail sink yet")

        firing = await self.apis.notifier.get("/alerts", params={"status": "firing", "object_id": "pbx-branch"})
        told_before = [
            a
            for a in firing
            if a["fingerprint"].startswith("collector/source-silent/")
            and datetime.fromisoformat(a["starts_at"]) < self.began
        ]
        if told_before and not any(
            "pbx-branch" in p.read_text(errors="replace") for p in self.paths.mail.glob("*.eml")
        ):
            # The alert fires once; it was mailed in an earlier run and the sink's folder was emptied since.
            self.say(
                f"pbx-branch is silent since {told_before[0]['starts_at']}; its alert was mailed in an earlier run"
            )
            return
        path = await until(mailed, what="the silent-source alert e-mail", timeout=150)
        self.say(f"the silent-source alert reached the mail sink: {path}")

    def where_to_look(self) -> None:
        for api in (self.apis.collector, self.apis.rater, self.apis.voip, self.apis.invoicer, self.apis.notifier):
            self.say(f"{api.name} API docs: {api.base_url}/docs")
        self.say(f"mail sink: {self.paths.mail}   SMS sink: {self.paths.sms}   invoices: {self.paths.output}")
        self.say(
            f"try next: tarifa collector import asterisk-escola {self.paths.root}/asterisk-sample.csv --tenant demo · "
            "tarifa rater rerate --help · "
            f"tarifa invoicer bill --tenant demo --period {self.period} --dry-run · POST /v1/alerts on the notifier"
        )
