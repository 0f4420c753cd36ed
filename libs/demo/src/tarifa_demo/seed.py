"""Seed the `demo` tenant through the services' HTTP APIs, idempotently: what exists is found, not made twice.

Each object is looked up by its natural key first (a customer by name, a contract by customer,
a line by number, a source by id) and created only when missing, so a second `tarifa up --demo`
on the same data directory changes nothing. Order matters where one service names another's
objects: contracts come first (the invoicer owns their ids), then the rater's extensions and the
voip-summit lines that carry those ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tarifa_demo import scenario
from tarifa_demo.api import Apis
from tarifa_demo.sinks import SummitSink

RECIPIENT_EMAIL = "operacoes@tarifa-demo.example"
RECIPIENT_PHONE = "+5511999990001"


@dataclass(frozen=True, slots=True)
class DemoPorts:
    """Where the demo's sources and sinks listen (each default plus `tarifa up --port-offset`)."""

    smdr_hotel: int
    smdr_branch: int
    summit: int
    sms: int
    smtp: int

    @classmethod
    def with_offset(cls, offset: int) -> DemoPorts:
        return cls(1080 + offset, 1081 + offset, 8190 + offset, 8191 + offset, 8192 + offset)


@dataclass
class Seeded:
    contracts: dict[str, str] = field(default_factory=dict)  # customer name -> contract id
    customers: dict[str, str] = field(default_factory=dict)  # customer name -> customer id
    lines: dict[str, str] = field(default_factory=dict)  # number -> voip-summit line id
    created: list[str] = field(default_factory=list)  # what this run created, for the terminal


async def seed(apis: Apis, *, today: date, ports: DemoPorts, drop_directory: Path) -> Seeded:
    seeded = Seeded()
    period_start, _ = scenario.previous_month(today)
    await _invoicer(apis, seeded, period_start)
    await _rater(apis, seeded)
    await _voip_summit(apis, seeded, ports, period_start)
    await _collector(apis, seeded, ports, drop_directory)
    await _notifier(apis, seeded)
    return seeded


async def _invoicer(apis: Apis, seeded: Seeded, period_start: date) -> None:
    await apis.invoicer.put("/billing-profile", scenario.billing_profile())
    existing = {c["name"]: c["id"] for c in await apis.invoicer.get("/customers")}
    extensions_of = {
        name: [e.number for e in scenario.EXTENSIONS if e.customer == name]
        for name in (scenario.HOTEL, scenario.SCHOOL, scenario.INTERNAL)
    }
    for customer in scenario.customers(period_start):
        customer_id = existing.get(customer.name)
        if customer_id is None:
            customer_id = (await apis.invoicer.post("/customers", customer.body))["id"]
            seeded.created.append(f"customer {customer.name}")
        seeded.customers[customer.name] = customer_id
        contracts = await apis.invoicer.get("/contracts", params={"customer_id": customer_id})
        if contracts:
            seeded.contracts[customer.name] = contracts[0]["id"]
            continue
        contract = await apis.invoicer.post(
            "/contracts", {"customer_id": customer_id, "due_day": 10, "starts_on": str(period_start)}
        )
        seeded.contracts[customer.name] = contract["id"]
        seeded.created.append(f"contract of {customer.name} with {len(customer.charges)} charge(s)")
        for charge in customer.charges:
            await apis.invoicer.post(f"/contracts/{contract['id']}/charges", charge)
        for extension in extensions_of[customer.name]:
            await apis.invoicer.post(
                f"/contracts/{contract['id']}/lines", {"line_id": extension, "assigned_on": str(period_start)}
            )


async def _rater(apis: Apis, seeded: Seeded) -> None:
    await apis.rater.put("/numbering/*", {"country_code": "55", "home_area_code": scenario.HOME_AREA_CODE})
    plans = await apis.rater.get("/tariffs")
    if not any(plan["code"] == scenario.PLAN_CODE for plan in plans):
        seeded.created.append(f"tariff plan {scenario.PLAN_CODE}")
    await apis.rater.call(
        "PUT",
        f"/tariffs/{scenario.PLAN_CODE}/versions/2020-01-01T00:00:00-03:00",
        params={"currency": "BRL", "normal_weekdays": "012345", "normal_from_hour": 7, "normal_until_hour": 21},
        content=scenario.TARIFF_CSV.encode(),
        headers={"Content-Type": "text/csv"},
    )
    await apis.rater.put("/tariff-assignments/tenant/*", {"plan_code": scenario.PLAN_CODE})
    for extension in scenario.EXTENSIONS:
        await apis.rater.put(
            f"/extensions/{extension.number}",
            {
                "customer_id": seeded.customers[extension.customer],
                "contract_id": seeded.contracts[extension.customer],
                "cost_centre": extension.cost_centre,
                "department": extension.department,
                "allowed_classes": extension.allowed_classes,
            },
        )


async def _voip_summit(apis: Apis, seeded: Seeded, ports: DemoPorts, period_start: date) -> None:
    integration = {
        "description": "Summit demo (simulator)",
        "access_user": SummitSink.USERNAME,
        "access_password": SummitSink.PASSWORD,
        "access_url": "127.0.0.1",
        "access_port": 22,
        "api_host": "127.0.0.1",
        "api_port": ports.summit,
        "cdr_directory": "/var/summit/cdr",
        "catalogue_mode": "local",
    }
    found = [i for i in await apis.voip.get("/integrations") if i["description"] == integration["description"]]
    if found:
        integration_id = found[0]["id"]
        if found[0]["api_port"] != ports.summit:
            await apis.voip.patch(f"/integrations/{integration_id}", {"api_port": ports.summit})
    else:
        integration_id = (await apis.voip.post("/integrations", integration))["id"]
        seeded.created.append(f"Summit integration on 127.0.0.1:{ports.summit}")
    if not any(r["name"] == scenario.NUMBER_RANGE["name"] for r in await apis.voip.get("/number-ranges")):
        await apis.voip.post("/number-ranges", scenario.NUMBER_RANGE)
        seeded.created.append(f"number range {scenario.NUMBER_RANGE['name']}")
    for kind, items in scenario.CATALOGUE.items():
        have = {item["code"].lower() for item in await apis.voip.get(f"/catalogue/{kind}")}
        for code, description in items:
            if code.lower() not in have:
                await apis.voip.post(f"/catalogue/{kind}", {"code": code, "description": description})
    have_partitions = {p["code"] for p in await apis.voip.get("/partitions")}
    for partition in scenario.PARTITIONS:
        if partition["code"] not in have_partitions:
            await apis.voip.post("/partitions", partition)
            seeded.created.append(f"partition {partition['code']}")
    for line in scenario.SIP_LINES:
        contract_id = seeded.contracts[line.customer]
        existing = {
            item["number"]: item["id"] for item in await apis.voip.get("/lines", params={"contract_id": contract_id})
        }
        line_id = existing.get(line.number)
        if line_id is None:
            created = await apis.voip.post(
                "/lines",
                {
                    "contract_id": contract_id,
                    "integration_id": integration_id,
                    "description": f"Ramal {line.extension}",
                    "number": line.number,
                    "extension": line.extension,
                    "partition": line.partition,
                    "category": "LIVRE",
                    "plan": "FIXO-100",
                    "licence": "BASIC",
                    "activation_date": str(period_start),
                    "due_day": 10,
                    "cost_centre": line.cost_centre,
                    "city": "São Paulo",
                },
            )
            line_id = created["id"]
            seeded.created.append(f"SIP line {line.number} ({line.partition})")
            for did in line.dids:
                await apis.voip.post(f"/lines/{line_id}/dids", {"number": did})
        seeded.lines[line.number] = line_id


async def _collector(apis: Apis, seeded: Seeded, ports: DemoPorts, drop_directory: Path) -> None:
    sources: list[dict[str, Any]] = [
        {
            # IP Office as the TCP server: the collector connects to it and reconnects if the link drops.
            "id": "pbx-hotel",
            "kind": "smdr_client",
            "format": "avaya_smdr",
            "time_zone": scenario.TIME_ZONE,
            "host": "127.0.0.1",
            "port": ports.smdr_hotel,
        },
        {
            # A branch office whose IP Office never sends anything: it goes silent after a minute.
            "id": "pbx-branch",
            "kind": "smdr_listener",
            "format": "avaya_smdr",
            "time_zone": scenario.TIME_ZONE,
            "host": "127.0.0.1",
            "port": ports.smdr_branch,
            "quiet_minutes": 1,
        },
        {
            "id": "asterisk-escola",
            "kind": "drop_directory",
            "format": "asterisk_csv",
            "time_zone": scenario.TIME_ZONE,
            "directory": str(drop_directory),
        },
    ]
    existing = {source["id"]: source for source in await apis.collector.get("/sources")}
    for source in sources:
        current = existing.get(str(source["id"]))
        if current is None:
            await apis.collector.post("/sources", source)
            seeded.created.append(f"source {source['id']} ({source['kind']})")
        elif any(current.get(key) != value for key, value in source.items()):
            await apis.collector.put(f"/sources/{source['id']}", {k: v for k, v in source.items() if k != "id"})


async def _notifier(apis: Apis, seeded: Seeded) -> None:
    await apis.notifier.put("/sms-provider", {"provider": "http"})
    recipients = [r for r in await apis.notifier.get("/recipients") if r["email"] == RECIPIENT_EMAIL]
    if recipients:
        return
    recipient = await apis.notifier.post(
        "/recipients", {"name": "Operações (plantão)", "email": RECIPIENT_EMAIL, "phone": RECIPIENT_PHONE}
    )
    for kind in ("source", "line", "customer", "extension"):
        await apis.notifier.post(
            f"/recipients/{recipient['id']}/responsibilities", {"object_kind": kind, "object_id": "*"}
        )
    seeded.created.append(f"recipient {RECIPIENT_EMAIL} / {RECIPIENT_PHONE}")
