"""The collector imports Summit CDR files as the real voip-summit's integration says: directory, schedule, delete."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from tarifa_collector.adapters.intake import Intake
from tarifa_collector.adapters.links import DropDirectory
from tarifa_collector.adapters.summit import HttpSummitIntegrations, SummitImports
from tarifa_collector.adapters.tables import SummitImportRow
from tarifa_collector.config import CollectorSettings
from tarifa_collector.domain.schedule import next_run
from tarifa_collector.domain.sources import AfterImport, SourceKind, SourceSettings
from tarifa_common import auth
from tarifa_common.broker import EmbeddedBroker
from tarifa_common.testing import ServedService, eventually, serve_service, unique

pytestmark = pytest.mark.broker
SECRET = "a-cross-service-secret-long-enough-for-hs256"
SAMPLE = Path(__file__).parents[1] / "services/collector/tests/samples/summit-cdr-20261102.csv"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


async def serve(name: str, tmp_path: Path, broker: EmbeddedBroker, **settings: Any) -> ServedService:
    return await serve_service(name, tmp_path, broker, jwt_secret=SECRET, **settings)


@pytest_asyncio.fixture
async def platform(
    tmp_path: Path, broker: EmbeddedBroker, fast_consumers: dict[str, str]
) -> AsyncIterator[tuple[ServedService, ServedService]]:
    voip = await serve("voip-summit", tmp_path, broker)
    collector = await serve(
        "collector", tmp_path, broker, voip_summit_url=voip.url, summit_refresh_seconds=0.2, reconcile_seconds=0.1
    )
    yield voip, collector
    await collector.stop()
    await voip.stop()


def bearer(tenant: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.mint(SECRET, subject='test', tenant=tenant, roles=list(roles))}"}


def drop(directory: Path, name: str) -> Path:
    """A Summit export written a while ago (settled: the writer is done)."""
    path = directory / name
    shutil.copy(SAMPLE, path)
    past = time.time() - 3600
    os.utime(path, (past, past))
    return path


async def test_the_collector_imports_as_the_voip_summit_integration_says_and_keeps_the_last_settings_when_it_is_down(
    platform: tuple[ServedService, ServedService], tmp_path: Path
) -> None:
    voip, collector = platform
    tenant = unique("isp")
    cdr = tmp_path / "summit-cdr"
    cdr.mkdir()
    monthly = {"minute": "15", "hour": "2", "day_of_month": "1", "month": "all", "day_of_week": "1"}
    integration = {
        "description": "Summit SP",
        "import_period": "monthly",
        "import_schedule": monthly,
        "access_user": "ixc",
        "access_password": "secret",
        "access_url": "cdr.summit.example",
        "access_port": 22,
        "api_host": "127.0.0.1",
        "api_port": 9,
        "cdr_directory": str(cdr),
        "delete_cdr_files": False,
    }
    async with httpx.AsyncClient(base_url=voip.url) as api:
        created = await api.post("/v1/integrations", json=integration, headers=bearer(tenant, "admin"))
        assert created.status_code == 201, created.text
    integration_id = created.json()["id"]
    source = {
        "id": "summit",
        "kind": "summit_integration",
        "format": "summit_csv",
        "integration_id": integration_id,
        "time_zone": "America/Sao_Paulo",
    }
    async with httpx.AsyncClient(base_url=collector.url) as api:
        answer = await api.post("/v1/sources", json=source, headers=bearer(tenant, "operator"))
        assert answer.status_code == 201, answer.text

        async def summit_block(**expected: Any) -> dict[str, Any]:
            found = (await api.get("/v1/sources/summit", headers=bearer(tenant, "viewer"))).json()["summit"]
            assert {key: found[key] for key in expected} == expected, found
            return dict(found)

        read = await eventually(lambda: summit_block(stale=False, delete_cdr_files=False))
        assert (read["directory"], read["schedule"], read["import_period"]) == (str(cdr), "15 2 1 * *", "monthly")

    settings = collector.app.state.runtime.settings
    assert isinstance(settings, CollectorSettings)
    intake = Intake(collector.app.state.runtime.units)
    imports = SummitImports(intake, settings, HttpSummitIntegrations(voip.url, SECRET))

    async def the_import() -> SourceSettings:
        [running] = (await imports.wanted()).values()  # what the collector runs for the source
        assert running.kind is SourceKind.DROP_DIRECTORY and running.directory == str(cdr)
        return running

    running = await the_import()
    # Monthly: the 1st wins over Mondays; after Monday 7 December the next import is Friday 1 January, 02:15 local.
    after = datetime(2026, 12, 7, 12, 0, tzinfo=SAO_PAULO)
    assert next_run(running.schedule or "", after, SAO_PAULO) == datetime(2027, 1, 1, 2, 15, tzinfo=SAO_PAULO)
    assert running.after_import is AfterImport.ARCHIVE
    drop(cdr, SAMPLE.name)
    await DropDirectory(intake, tenant, running, poll=1, settle=0).scan()
    assert [p.name for p in cdr.iterdir() if p.is_file()] == []
    assert [p.name for p in (cdr / "archive").iterdir()] == [SAMPLE.name]  # kept: the integration says so
    async with httpx.AsyncClient(base_url=collector.url) as api:
        health = (await api.get("/v1/sources/summit", headers=bearer(tenant, "viewer"))).json()["health"]
    imported = health["records_total"] + health["rejects_total"]
    assert imported == len(SAMPLE.read_text().splitlines()) - 1  # every row of the export but its header

    async with httpx.AsyncClient(base_url=voip.url) as api:  # the operator changes the integration in voip-summit
        daily = {"minute": "30", "hour": "7", "day_of_month": "all", "month": "all", "day_of_week": "1-5"}
        changes = {"delete_cdr_files": True, "import_period": "daily", "import_schedule": daily}
        changed = await api.patch(f"/v1/integrations/{integration_id}", json=changes, headers=bearer(tenant, "admin"))
        assert changed.status_code == 200, changed.text
    async with httpx.AsyncClient(base_url=collector.url) as api:
        read = await eventually(lambda: summit_block(delete_cdr_files=True, schedule="30 7 * * 1-5"))

    async def deleting() -> SourceSettings:
        running = await the_import()
        assert running.after_import is AfterImport.DELETE and running.schedule == "30 7 * * 1-5"
        return running

    running = await eventually(deleting)
    drop(cdr, "summit-cdr-20261103.csv")
    await DropDirectory(intake, tenant, running, poll=1, settle=0).scan()
    assert [p.name for p in cdr.iterdir() if p.is_file()] == []
    assert [p.name for p in (cdr / "archive").iterdir()] == [SAMPLE.name]  # deleted, not archived

    await voip.stop()  # voip-summit goes away: the collector keeps the last settings and says so
    async with httpx.AsyncClient(base_url=collector.url) as api:
        stale = await eventually(lambda: summit_block(stale=True, delete_cdr_files=True, directory=str(cdr)))
    assert stale["error"] and stale["error_since"] and stale["fetched_at"] >= read["fetched_at"]
    assert (await the_import()).after_import is AfterImport.DELETE
    async with collector.app.state.runtime.units() as uow:
        row = await uow.session.get(SummitImportRow, (tenant, "summit"))
    assert row is not None and row.alerted  # an important alert is open: collector/summit-settings/<tenant>/summit

    async with httpx.AsyncClient(base_url=collector.url) as api:  # a deleted source forgets what it read
        assert (await api.delete("/v1/sources/summit", headers=bearer(tenant, "operator"))).status_code == 204

    async def forgotten() -> None:
        async with collector.app.state.runtime.units() as uow:
            assert await uow.session.get(SummitImportRow, (tenant, "summit")) is None

    await eventually(forgotten)
    assert await imports.wanted() == {}
