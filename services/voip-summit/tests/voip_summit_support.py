"""Fixtures of the voip-summit tests: a Summit simulator on a real socket, and the service on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
import uvicorn

from tarifa_common import auth
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.testing import eventually, unique
from tarifa_voip_summit.bootstrap import VoipSummit
from tarifa_voip_summit.config import VoipSummitSettings
from tarifa_voip_summit.entrypoints.api import create_app
from tarifa_voip_summit.simulator import Faults, SummitState, create_simulator

JWT_SECRET = "v" * 48
SUMMIT_USER = "ixc-api"
SUMMIT_PASSWORD = "Sup3r-S3cret-Summit-Pa55"


@dataclass
class Summit:
    state: SummitState
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def inject(self, **faults: Any) -> None:
        self.state.faults = Faults(**faults)


@pytest_asyncio.fixture
async def summit() -> AsyncIterator[Summit]:
    """The Summit simulator on a free TCP port, demanding the integration's user and password."""
    state = SummitState()
    state.seed_demo()
    port = free_port()
    app = create_simulator(state, username=SUMMIT_USER, password=SUMMIT_PASSWORD)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve())

    async def started() -> None:
        assert server.started

    await eventually(started, timeout=10, interval=0.02)
    yield Summit(state, "127.0.0.1", port)
    server.should_exit = True
    await task


@dataclass
class Service:
    voip: VoipSummit
    http: httpx.AsyncClient
    tenant: str
    summit: Summit

    async def integration(self, mode: str = "local") -> str:
        body = {
            "description": "Summit SP",
            "import_period": "daily",
            "access_user": SUMMIT_USER,
            "access_password": SUMMIT_PASSWORD,
            "access_url": "cdr.summit.example",
            "access_port": 22,
            "api_host": self.summit.host,
            "api_port": self.summit.port,
            "cdr_directory": "/var/summit/cdr",
            "delete_cdr_files": True,
            "catalogue_mode": mode,
        }
        answer = await self.http.post("/v1/integrations", json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def catalogue(self, *, blocking: bool = True, partial: bool = True) -> None:
        """Partition SP-CAPITAL (LIVRE/BLOQ/PARC/CANC), plan, licence, cost centre, range 5511 3000-0000..0099."""
        partition = {
            "code": "SP-CAPITAL",
            "description": "São Paulo capital",
            "blocking_enabled": blocking,
            "default_category": "LIVRE",
            "block_category": "BLOQ",
            "partial_block_category": "PARC" if partial else None,
            "cancellation_category": "CANC",
        }
        for path, body in (
            ("/v1/partitions", partition),
            ("/v1/catalogue/plans", {"code": "FIXO-100", "description": "Fixo 100"}),
            ("/v1/catalogue/licences", {"code": "BASIC", "description": "Básica"}),
            ("/v1/catalogue/cost-centres", {"code": "Default"}),
            ("/v1/number-ranges", {"name": "SP", "prefix": "5511", "first": "30000000", "last": "30000099"}),
        ):
            answer = await self.http.post(path, json=body)
            assert answer.status_code == 201, answer.text

    def line_body(self, integration_id: str, number: str = "+551130000001", **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "contract_id": "C-1",
            "integration_id": integration_id,
            "bid_type": "terminal",
            "account_code": "123456",
            "number": number,
            "extension": "2001",
            "partition": "SP-CAPITAL",
            "category": "LIVRE",
            "plan": "FIXO-100",
            "licence": "BASIC",
            "activation_date": "2026-11-22",
            "due_day": 10,
            "cost_centre": "DEFAULT",
            "call_limit": 2,
            "credit_limit": "150.00",
            "city": "São Paulo",
        }
        return {**body, **changes}

    async def applied(self, line_id: str) -> dict[str, Any]:
        """Wait until the line's Summit operations are all applied; return the line."""

        async def check() -> dict[str, Any]:
            line = (await self.http.get(f"/v1/lines/{line_id}")).json()
            assert line["sync_status"] == "applied", line
            return dict(line)

        return await eventually(check, timeout=30)


def settings_for(database_url: str, bootstrap_servers: str, **extra: Any) -> VoipSummitSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap_servers,
        "jwt_secret": JWT_SECRET,
        "consumer_session_timeout_ms": 3000,
        "consumer_rebalance_timeout_ms": 3000,
        "outbox_poll_seconds": 0.1,
        "operation_poll_seconds": 0.05,
        "summit_timeout_seconds": 1.0,
        "summit_backoff_seconds": 0.01,
        "heartbeat_interval_seconds": 5,
    }
    return VoipSummitSettings(**{**values, **extra})


@pytest_asyncio.fixture
async def service(database_url: str, summit: Summit) -> AsyncIterator[Service]:
    """The voip-summit with its API and Summit queue, and no broker (the outbox keeps the events)."""
    async with running(database_url, f"127.0.0.1:{free_port()}", summit) as instance:
        yield instance


@pytest_asyncio.fixture
async def service_on_broker(database_url: str, broker: EmbeddedBroker, summit: Summit) -> AsyncIterator[Service]:
    """The voip-summit running with the real broker: consumers, outbox relay, Summit queue."""
    async with running(database_url, broker.bootstrap_servers, summit) as instance:
        yield instance


@asynccontextmanager
async def running(database_url: str, bootstrap_servers: str, summit: Summit) -> AsyncIterator[Service]:
    tenant = unique("isp")
    app = create_app(settings_for(database_url, bootstrap_servers))
    voip: VoipSummit = app.state.voip
    await voip.runtime.start()
    token = auth.mint(JWT_SECRET, subject="alice", tenant=tenant, roles=[auth.ADMIN])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://voip-summit", headers={"Authorization": f"Bearer {token}"}
    ) as http:
        try:
            yield Service(voip, http, tenant, summit)
        finally:
            await voip.runtime.stop()
