"""Per-tenant rules through the API: a tenant's own rating watchdog (interval, e-mails) and inhibition rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest_asyncio
from sqlmodel import select

from tarifa_common import auth
from tarifa_common.alerts import AlertObject, AlertRaised, Severity
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier import handlers
from tarifa_notifier.adapters.repository import SqlNotifierStore
from tarifa_notifier.adapters.tables import AlertRow, NotificationRow, RecipientRow, ResponsibilityRow
from tarifa_notifier.config import NotifierSettings
from tarifa_notifier.domain.alerts import GroupPolicy
from tarifa_notifier.entrypoints.api import create_app

SECRET = "t" * 48
POLICY = GroupPolicy(timedelta(seconds=30), timedelta(minutes=1), timedelta(hours=4))
PLATFORM_WATCH = handlers.WatchdogSettings(
    rating_every=timedelta(minutes=15), watch_emails=("noc@tarifa.test",), lag_threshold=10_000
)


@pytest_asyncio.fixture
async def api(units: UnitOfWorkFactory, database_url: str, clock) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    settings = NotifierSettings(database_url=database_url, kafka_bootstrap_servers="127.0.0.1:1", jwt_secret=SECRET)
    app = create_app(settings, clock=clock, loops=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifier") as client:
        yield client
    await app.state.runtime.engine.dispose()


def bearer(role: str = "operator", tenant: str = "hotel") -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.mint(SECRET, subject='ana', tenant=tenant, roles=[role])}"}


def rater_beat(processed: int, lag: int) -> dict[str, object]:
    return {
        "service": "rater",
        "instance": "rater-1",
        "interval_seconds": 10,
        "consumers": {"rater": {"processed": processed, "lag": lag}},
    }


async def watch(units: UnitOfWorkFactory, clock, beat: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    async with units() as uow:
        store = SqlNotifierStore(uow.session)
        await handlers.record_heartbeat(store, beat, clock())
        await handlers.run_watchdogs(store, PLATFORM_WATCH, clock())


async def rating_alert(units: UnitOfWorkFactory, tenant: str) -> AlertRow | None:
    async with units() as uow:
        statement = select(AlertRow).where(
            AlertRow.tenant == tenant, AlertRow.fingerprint == "notifier/rating-stopped/rater"
        )
        return (await uow.session.exec(statement)).first()


async def test_a_tenant_hears_of_stopped_rating_at_its_own_interval_on_its_own_list(
    api: httpx.AsyncClient, units: UnitOfWorkFactory, clock
) -> None:  # type: ignore[no-untyped-def]
    anonymous = await api.put("/v1/watchdog-settings", json={"rating_check_minutes": 5, "emails": ["it@h.test"]})
    assert anonymous.status_code == 401
    too_often = await api.put(
        "/v1/watchdog-settings", json={"rating_check_minutes": 0.5, "emails": ["it@h.test"]}, headers=bearer()
    )
    assert too_often.status_code == 422 and too_often.json()["errors"][0]["field"] == "rating_check_minutes"
    put = await api.put(
        "/v1/watchdog-settings", json={"rating_check_minutes": 2, "emails": ["it@hotel.test"]}, headers=bearer()
    )
    assert put.status_code == 200
    assert (await api.get("/v1/watchdog-settings", headers=bearer("viewer"))).json() == {
        "rating_check_minutes": 2.0,
        "emails": ["it@hotel.test"],
    }

    await watch(units, clock, rater_beat(100, 0))  # first look for both: rated
    clock.advance(minutes=2)
    await watch(units, clock, rater_beat(100, 7))  # calls wait, none rated: the hotel's 2 minutes are up
    hotel = await rating_alert(units, "hotel")
    assert hotel is not None and hotel.status == "firing"
    assert (hotel.repeat_seconds, hotel.extra_emails) == (120, ["it@hotel.test"])
    assert "7 call(s) waiting" in hotel.summary
    assert await rating_alert(units, "platform") is None  # the platform looks every 15 minutes: not yet

    clock.advance(minutes=1)
    await watch(units, clock, rater_beat(130, 0))  # rated again, but the hotel's next look is in a minute
    hotel = await rating_alert(units, "hotel")
    assert hotel is not None and hotel.status == "firing"
    clock.advance(minutes=1)
    await watch(units, clock, rater_beat(130, 0))
    hotel = await rating_alert(units, "hotel")
    assert hotel is not None and hotel.status == "resolved" and hotel.summary.startswith("Rating resumed")

    cleared = await api.put("/v1/watchdog-settings", json={"rating_check_minutes": None}, headers=bearer())
    assert cleared.json() == {"rating_check_minutes": None, "emails": []}


def alert(fingerprint: str, object_id: str) -> AlertRaised:
    return AlertRaised(
        fingerprint=fingerprint,
        severity=Severity.IMPORTANT,
        object=AlertObject(kind="source", id=object_id),
        summary=fingerprint,
    )


async def told(units: UnitOfWorkFactory, clock) -> set[str]:  # type: ignore[no-untyped-def]
    """Flush and fan out; the subjects' group keys of the log rows written."""

    @asynccontextmanager
    async def open_store() -> AsyncIterator[SqlNotifierStore]:
        async with units() as uow:
            yield SqlNotifierStore(uow.session)

    async with units() as uow:
        await handlers.flush_groups(SqlNotifierStore(uow.session), POLICY, clock())
    await handlers.fan_out(open_store)
    async with units() as uow:
        return {r.group_key for r in (await uow.session.exec(select(NotificationRow))).all()}


async def test_a_tenants_inhibition_rule_mutes_what_its_cause_explains_until_deleted(
    api: httpx.AsyncClient, units: UnitOfWorkFactory, clock
) -> None:  # type: ignore[no-untyped-def]
    rules = (await api.get("/v1/inhibit-rules", headers=bearer("viewer"))).json()
    assert [(r["id"], r["built_in"]) for r in rules] == [("default-source-down", True)]
    refused = await api.post(
        "/v1/inhibit-rules",
        json={"source_matchers": [{"label": "condition", "value": "trunk-down"}], "target_matchers": []},
        headers=bearer(),
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "target_matchers"
    refused = await api.post(
        "/v1/inhibit-rules",
        json={
            "source_matchers": [{"label": "condition", "value": "trunk-down"}],
            "target_matchers": [{"label": "condition", "op": "~", "value": "x"}],
        },
        headers=bearer(),
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "target_matchers.0.op"
    created = await api.post(
        "/v1/inhibit-rules",
        json={
            "source_matchers": [{"label": "condition", "value": "trunk-down"}],
            "target_matchers": [{"label": "condition", "value": "source-silent"}],
            "equal": ["object_id"],
            "comment": "the trunk explains its PBX's silence",
        },
        headers=bearer(),
    )
    assert created.status_code == 201, created.text
    assert (await api.delete("/v1/inhibit-rules/default-source-down", headers=bearer())).status_code == 422

    async with units() as uow:
        for tenant in ("hotel", "other"):
            uow.session.add(RecipientRow(id=f"{tenant}-ana", tenant=tenant, name="Ana", email=f"ana@{tenant}.test"))
            uow.session.add(
                ResponsibilityRow(tenant=tenant, recipient_id=f"{tenant}-ana", object_kind="source", object_id="*")
            )
    async with units() as uow:
        store = SqlNotifierStore(uow.session)
        for tenant in ("hotel", "other"):
            await handlers.raise_alert(store, tenant, alert("carrier/trunk-down/pbx-hq", "pbx-hq"), clock())
            await handlers.raise_alert(store, tenant, alert("collector/source-silent/pbx-hq", "pbx-hq"), clock())
            await handlers.raise_alert(store, tenant, alert("collector/source-silent/pbx-2", "pbx-2"), clock())
    clock.advance(seconds=31)
    await told(units, clock)
    async with units() as uow:
        rows = (await uow.session.exec(select(NotificationRow))).all()
    by_tenant = {t: sorted(r.body for r in rows if r.tenant == t) for t in ("hotel", "other")}
    assert "collector/source-silent/pbx-hq" not in "".join(by_tenant["hotel"])  # muted by the hotel's rule
    assert "carrier/trunk-down/pbx-hq" in "".join(by_tenant["hotel"])  # the cause is told
    assert "collector/source-silent/pbx-2" in "".join(by_tenant["hotel"])  # another PBX: not explained
    assert "collector/source-silent/pbx-hq" in "".join(by_tenant["other"])  # other tenants keep their rules

    deleted = await api.delete(f"/v1/inhibit-rules/{created.json()['id']}", headers=bearer())
    assert deleted.status_code == 200
    clock.advance(minutes=2)  # past the group interval: the muted alert is now a change to tell
    await told(units, clock)
    async with units() as uow:
        rows = (await uow.session.exec(select(NotificationRow).where(NotificationRow.tenant == "hotel"))).all()
    assert "collector/source-silent/pbx-hq" in "".join(r.body for r in rows)
