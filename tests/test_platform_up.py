"""`tarifa up`: the broker and the five services come up, answer `/readyz`, and leave nothing behind."""

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tarifa_common.broker import free_port, port_is_open
from tarifa_common.service import discover
from tarifa_common.testing import FAST_CONSUMER_ENV, eventually

pytestmark = pytest.mark.slow
TARIFA = Path(sys.executable).parent / "tarifa"


def free_offset(ports: list[int]) -> int:
    for _ in range(100):
        offset = random.randrange(1000, 20000, 10)
        if not any(port_is_open("127.0.0.1", port + offset) for port in ports):
            return offset
    raise RuntimeError("no free block of ports")


async def start_platform(tmp_path: Path) -> tuple[asyncio.subprocess.Process, list[int]]:
    specs = discover()
    assert list(specs) == ["collector", "rater", "voip-summit", "invoicer", "notifier"]
    base_ports = [spec.settings.default_http_port for spec in specs.values()]
    offset = free_offset(base_ports)
    process = await asyncio.create_subprocess_exec(
        str(TARIFA),
        "up",
        "--data-dir",
        str(tmp_path / "data"),
        "--broker-port",
        str(free_port()),
        "--port-offset",
        str(offset),
        env={**os.environ, **FAST_CONSUMER_ENV, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    return process, [port + offset for port in base_ports]


async def wait_for_up(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    seen = ""
    while "Ctrl-C stops everything" not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        assert line, f"tarifa up ended before it was up:\n{seen}"
        seen += line.decode()
    return seen


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


async def assert_all_ready(ports: list[int]) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for port in ports:
            answer = await client.get(f"http://127.0.0.1:{port}/readyz")
            assert answer.status_code == 200, answer.text
            assert answer.json()["checks"]["database"] == "ok"


async def test_tarifa_up_brings_everything_to_ready_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    process, ports = await start_platform(tmp_path)
    try:
        output = await wait_for_up(process)
        await assert_all_ready(ports)
        children = descendants(process.pid)
        names = " ".join(" ".join(child.cmdline()) for child in children)
        assert "tansu" in names
        for service in ("collector", "rater", "voip-summit", "invoicer", "notifier"):
            assert f"serve {service}" in names
        assert "/docs" in output

        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 60) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], f"left behind: {[p.cmdline() for p in alive]}"
        assert not any(port_is_open("127.0.0.1", port) for port in ports)
    finally:
        if process.returncode is None:
            process.kill()


async def test_a_killed_supervisor_leaves_no_orphans(tmp_path: Path) -> None:
    process, _ = await start_platform(tmp_path)
    await wait_for_up(process)
    children = descendants(process.pid)
    assert len(children) >= 6
    process.kill()
    await process.wait()

    async def all_gone() -> None:
        assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    await eventually(all_gone, timeout=30)
