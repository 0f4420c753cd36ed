"""Benchmark: SIP lines provisioned on the Summit simulator per second, end to end.

Starts the Summit simulator on a free port and the voip-summit (SQLite, no broker: the outbox
keeps the events) in this process, creates N lines through the HTTP API, and measures (1) API
line creations per second (database + queue + outbox) and (2) lines applied on Summit per
second by the background queue (HTTP to the simulator, terminal and credential stored).

    .venv/bin/python bench/voip_summit_provisioning.py [--lines 300] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn

from tarifa_common import auth
from tarifa_common.broker import free_port
from tarifa_voip_summit.config import VoipSummitSettings
from tarifa_voip_summit.entrypoints.api import create_app
from tarifa_voip_summit.simulator import Faults, SummitState, create_simulator

SECRET = "b" * 48


async def main(lines: int, latency_ms: int, database_url: str | None = None) -> None:
    state = SummitState()
    state.seed_demo()
    state.faults = Faults(latency_ms=latency_ms)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_simulator(state, username="u", password="p"), port=port, log_level="warning")
    )
    simulator = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    with tempfile.TemporaryDirectory() as tmp:
        settings = VoipSummitSettings(
            database_url=database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
            jwt_secret=SECRET,
            operation_poll_seconds=0.02,
            log_level="WARNING",
        )
        app = create_app(settings)
        voip = app.state.voip
        await voip.runtime.start()
        token = auth.mint(SECRET, subject="bench", tenant="bench", roles=[auth.ADMIN])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://x", headers={"Authorization": f"Bearer {token}"}
        ) as http:
            integration = (
                await http.post(
                    "/v1/integrations",
                    json={
                        "description": "bench",
                        "access_user": "u",
                        "access_password": "p",
                        "access_url": "x",
                        "access_port": 22,
                        "api_host": "127.0.0.1",
                        "api_port": port,
                        "cdr_directory": "/tmp",
                    },
                )
            ).json()["id"]
            for path, body in (
                (
                    "/v1/partitions",
                    {
                        "code": "SP-CAPITAL",
                        "description": "SP",
                        "blocking_enabled": True,
                        "default_category": "LIVRE",
                        "block_category": "BLOQ",
                        "cancellation_category": "CANC",
                    },
                ),
                ("/v1/catalogue/plans", {"code": "FIXO-100"}),
                ("/v1/catalogue/cost-centres", {"code": "Default"}),
                ("/v1/number-ranges", {"name": "SP", "prefix": "5511", "first": "30000000", "last": "30099999"}),
            ):
                assert (await http.post(path, json=body)).status_code == 201
            started = time.perf_counter()
            for n in range(lines):
                body = {
                    "contract_id": f"C-{n}",
                    "integration_id": integration,
                    "number": f"+55113{n:07d}",
                    "partition": "SP-CAPITAL",
                    "category": "LIVRE",
                    "plan": "FIXO-100",
                    "due_day": 10,
                }
                answer = await http.post("/v1/lines", json=body)
                assert answer.status_code == 201, answer.text
            created = time.perf_counter() - started
            while len(state.terminals) < lines or await _pending(voip):
                await asyncio.sleep(0.02)
            applied = time.perf_counter() - started
        await voip.runtime.stop()
    server.should_exit = True
    await simulator
    print(f"database: {settings.database_url.split('://')[0]}, load average: {os.getloadavg()[0]:.1f}")
    print(f"lines: {lines}, simulator latency: {latency_ms} ms, Summit requests: {state.requests}")
    print(f"API line creations: {lines / created:.0f} lines/s ({created:.2f} s)")
    print(f"provisioned on Summit (create to terminal stored): {lines / applied:.0f} lines/s ({applied:.2f} s)")


async def _pending(voip: object) -> int:
    async with voip.runtime.units() as uow:  # type: ignore[attr-defined]
        return int(await voip.store(uow).count_pending())  # type: ignore[attr-defined]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--database-url", default=None, help="an empty database; default: a temporary SQLite file")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.lines, arguments.latency_ms, arguments.database_url))
