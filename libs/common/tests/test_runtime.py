"""A service's runtime: the outbox survives a broker outage, heartbeats flow, the API answers health."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, ClassVar

import httpx
import pytest
from fastapi import APIRouter
from pydantic_settings import SettingsConfigDict
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common import auth, errors
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.config import ServiceSettings
from tarifa_common.events import Event, decode
from tarifa_common.http import create_app as create_service_app
from tarifa_common.http import require
from tarifa_common.messaging import OutboxEntry
from tarifa_common.runtime import HEARTBEAT_TYPE, ServiceRuntime
from tarifa_common.testing import eventually, read_all, unique
from tarifa_common.topics import HEARTBEAT

pytestmark = pytest.mark.broker
SECRET = "k" * 48


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = "probe"
    default_http_port: ClassVar[int] = 8199
    model_config = SettingsConfigDict(env_prefix="TARIFA_PROBE_", extra="ignore", validate_default=True)


def probe_settings(bootstrap: str, database_url: str) -> ProbeSettings:
    return ProbeSettings(
        kafka_bootstrap_servers=bootstrap,
        database_url=database_url,
        heartbeat_interval_seconds=0.5,
        outbox_poll_seconds=0.1,
        jwt_secret=SECRET,
    )


async def outbox_size(runtime: ServiceRuntime) -> int:
    async with AsyncSession(runtime.engine) as session:
        return int((await session.exec(select(func.count()).select_from(OutboxEntry))).one())


async def test_an_outbox_row_written_while_the_broker_is_down_is_published_when_it_is_back(
    engine: object, database_url: str, tmp_path: Path
) -> None:
    down = EmbeddedBroker(free_port(), log_file=tmp_path / "broker.log")
    runtime = ServiceRuntime(probe_settings(down.bootstrap_servers, database_url), migrations=None)
    await runtime.start()
    try:
        topic = unique("outbox")
        event = Event(type="tarifa.test.happened.v1", source="tarifa/probe", tenant="acme", data={"n": 1})
        async with runtime.units() as uow:
            uow.emit(event, topic, key="k")
        await asyncio.sleep(1.0)  # the relay has tried and failed meanwhile; the row must still be there
        assert await outbox_size(runtime) == 1
        ready, checks = await runtime.readiness()
        assert not ready
        assert checks["broker"].startswith("unreachable")

        await down.start()

        async def published() -> None:
            assert await outbox_size(runtime) == 0

        await eventually(published, timeout=60)
        [record] = await read_all(down.bootstrap_servers, topic, 1)
        assert decode(record.headers, record.key, record.value).id == event.id
        assert runtime.relay.published == 1
    finally:
        await runtime.stop()
        await down.stop()


async def test_a_rolled_back_unit_of_work_publishes_nothing(engine: object, database_url: str) -> None:
    runtime = ServiceRuntime(probe_settings("127.0.0.1:1", database_url), migrations=None)
    with pytest.raises(RuntimeError):
        async with runtime.units() as uow:
            uow.emit(Event(type="tarifa.test.happened.v1", source="t", tenant="acme", data={}), "t", None)
            raise RuntimeError("the change failed")
    assert await outbox_size(runtime) == 0
    await runtime.engine.dispose()


async def test_a_running_service_publishes_heartbeats(broker: EmbeddedBroker, tmp_path: Path) -> None:
    runtime = ServiceRuntime(
        probe_settings(broker.bootstrap_servers, f"sqlite+aiosqlite:///{tmp_path}/p.db"), migrations=None
    )
    await runtime.start()
    try:

        async def beating() -> list[Event]:
            records = await read_all(broker.bootstrap_servers, HEARTBEAT.name, 1, timeout=2)
            mine = [decode(r.headers, r.key, r.value) for r in records]
            mine = [e for e in mine if e.subject == runtime.instance_id]
            assert len(mine) >= 2
            return mine

        beats = await eventually(beating, timeout=30)
        assert beats[0].type == HEARTBEAT_TYPE
        assert beats[0].data["service"] == "probe"
        assert beats[0].tenant == "platform"
    finally:
        await runtime.stop()


@pytest.fixture
async def api(broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    runtime = ServiceRuntime(
        probe_settings(broker.bootstrap_servers, f"sqlite+aiosqlite:///{tmp_path}/a.db"), migrations=None
    )
    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def get_thing(
        thing_id: int, principal: Annotated[auth.Principal, require(auth.OPERATOR)]
    ) -> dict[str, object]:
        if thing_id == 404:
            raise errors.NotFound(f"thing {thing_id} does not exist")
        if thing_id == 422:
            raise errors.InvalidInput("due_day", "must be between 1 and 25")
        if thing_id == 500:
            raise RuntimeError("boom")
        return {"id": thing_id, "tenant": principal.tenant}

    app = create_service_app(runtime, title="probe", description="", version="0", routers=[router])
    await runtime.start()
    await runtime.publisher.ready.wait()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        yield client
    await runtime.stop()


def bearer(*roles: str, tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.mint(SECRET, subject='t', tenant=tenant, roles=list(roles))}"}


async def test_health_endpoints_answer_without_a_token(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "alive"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["broker"] == "ok"


async def test_routes_need_a_token_with_a_fitting_role(api: httpx.AsyncClient) -> None:
    missing = await api.get("/v1/things/1")
    assert missing.status_code == 401
    assert "tarifa token" in missing.json()["detail"]
    assert (await api.get("/v1/things/1", headers=bearer("viewer"))).status_code == 403
    ok = await api.get("/v1/things/1", headers=bearer("operator", tenant="globex"))
    assert ok.json() == {"id": 1, "tenant": "globex"}


async def test_errors_are_problem_documents_that_name_the_field(api: httpx.AsyncClient) -> None:
    invalid = await api.get("/v1/things/422", headers=bearer("admin"))
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert invalid.json()["errors"] == [{"field": "due_day", "problem": "must be between 1 and 25"}]
    assert (await api.get("/v1/things/404", headers=bearer("admin"))).json()["type"] == "not_found"
    bad_path = await api.get("/v1/things/abc", headers=bearer("admin"))
    assert bad_path.status_code == 422
    assert bad_path.json()["errors"][0]["field"] == "path.thing_id"
    crash = await api.get("/v1/things/500", headers=bearer("admin"))
    assert crash.status_code == 500
    assert "boom" not in crash.text


async def test_openapi_is_published_with_the_problem_schema(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/things/{thing_id}" in spec["paths"]
    assert "Problem" in spec["components"]["schemas"]
