"""An extension of `tarifa up` (what `--demo` plugs in): its settings reach the services, its failure is told."""

import asyncio
import io
from pathlib import Path

import httpx
import psutil
import pytest
from rich.console import Console

from tarifa_common.broker import free_port
from tarifa_common.service import Platform, discover
from tarifa_common.supervisor import Supervisor
from tarifa_common.testing import eventually

pytestmark = pytest.mark.slow


class FailingExtension:
    """Asks for a setting (and, wrongly, for the service's port), checks the platform, then fails."""

    def __init__(self) -> None:
        self.saw_ready = False
        self.closed = False

    async def prepare(self, platform: Platform) -> dict[str, str]:
        return {"TARIFA_RATER_LOG_LEVEL": "DEBUG", "TARIFA_RATER_HTTP_PORT": "1"}

    async def run(self, platform: Platform) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            self.saw_ready = (await client.get(f"{platform.urls['rater']}/readyz")).status_code == 200
        raise RuntimeError("the story broke")

    async def close(self) -> None:
        self.closed = True


async def test_an_extension_sets_settings_of_services_and_its_failure_leaves_the_platform_running(
    tmp_path: Path,
) -> None:
    output = io.StringIO()
    extension = FailingExtension()
    supervisor = Supervisor(
        [discover()["rater"]],
        data_dir=tmp_path,
        broker_port=free_port(),
        port_offset=free_port() - 8102,
        console=Console(file=output, width=200),
        extension=extension,
    )
    running = asyncio.create_task(supervisor.run())
    try:

        async def told() -> None:
            assert "FailingExtension failed: RuntimeError: the story broke" in output.getvalue()

        await eventually(told, timeout=90, interval=0.2)
        assert extension.saw_ready
        (rater,) = supervisor.services
        assert rater.process is not None
        environment = psutil.Process(rater.process.pid).environ()
        assert environment["TARIFA_RATER_LOG_LEVEL"] == "DEBUG"
        assert environment["TARIFA_RATER_HTTP_PORT"] == str(rater.port)  # the supervisor's, not the extension's
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(f"{rater.url}/readyz")).status_code == 200
    finally:
        supervisor.request_stop()
        assert await asyncio.wait_for(running, 60) == 0
    assert extension.closed
