"""SMDR over TCP into cdr.raw on the embedded broker: records per second end to end, and memory over the run.

A fake IP Office connects to a collector's SMDR listener and sends N records; the figure is N
divided by the time until every record is archived AND its call published (outbox empty).
Run: .venv/bin/python bench/collector_smdr_tcp.py [RECORDS] [--no-worker]
The CPU figure is the collector's: this process (every thread) and its SMDR prepare worker
process (`TARIFA_COLLECTOR_PREPARE_WORKER`, on by default; `--no-worker` prepares on the event
loop, as before 2026-12-04), not the broker's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_collector.adapters.tables import ArchivedRecord
from tarifa_collector.config import CollectorSettings
from tarifa_collector.entrypoints.api import create_app
from tarifa_collector.fake_ipoffice import FakeIpOffice, smdr_line
from tarifa_common import auth
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.config import tune_garbage_collector
from tarifa_common.messaging import OutboxEntry

SECRET = "b" * 48


async def count(runtime_engine: object, table: type) -> int:
    async with AsyncSession(runtime_engine) as session:  # type: ignore[arg-type]
        return int((await session.exec(select(func.count()).select_from(table))).one())


def worker_cpu(process: psutil.Process) -> float:
    """CPU seconds so far of this process's multiprocessing descendants (the forkserver and the prepare worker)."""
    total = 0.0
    for child in process.children(recursive=True):
        try:
            if "multiprocessing" in " ".join(child.cmdline()):
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


async def main(records: int, worker: bool) -> None:
    process = psutil.Process(os.getpid())
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(free_port(), log_file=Path(tmp) / "broker.log")
        await broker.start()
        settings = CollectorSettings(
            kafka_bootstrap_servers=broker.bootstrap_servers,
            database_url=f"sqlite+aiosqlite:///{tmp}/collector.db",
            jwt_secret=SECRET,
            outbox_poll_seconds=0.05,
            reconcile_seconds=0.2,
            smdr_bind_host="127.0.0.1",
            prepare_worker=worker,
        )
        tune_garbage_collector(settings)  # what `tarifa serve collector` does for its process
        app = create_app(settings)
        runtime = app.state.runtime
        await runtime.start()
        await runtime.publisher.ready.wait()
        port = free_port()
        token = auth.mint(SECRET, subject="bench", tenant="bench", roles=["operator"])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as client:
            answer = await client.post(
                "/v1/sources",
                json={"id": "pbx", "kind": "smdr_listener", "port": port},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 201, answer.text
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.1)

        def lines() -> bytes:
            return b"".join(smdr_line(1_000_000 + n, fields=(17, 30, 31, 34)[n % 4]) for n in range(records))

        payload = lines()
        rss_start = process.memory_info().rss
        started = time.perf_counter()
        cpu_start = time.process_time()
        worker_start = worker_cpu(process)
        sender = asyncio.ensure_future(FakeIpOffice.send_to("127.0.0.1", port, [payload]))
        peak = rss_start
        polls = 0
        while True:
            await asyncio.sleep(0.25)  # a fine grain: the end of a 20,000-record run is within a quarter second
            polls += 1
            peak = max(peak, process.memory_info().rss)
            archived = await count(runtime.engine, ArchivedRecord)
            waiting = await count(runtime.engine, OutboxEntry)
            elapsed = time.perf_counter() - started
            if polls % 4 == 0 or (archived >= records and waiting == 0):
                print(
                    f"  {elapsed:6.1f}s archived {archived:>9,} outbox {waiting:>7,} rss {peak / 2**20:6.0f} MiB",
                    flush=True,
                )
            if archived >= records and waiting == 0:
                break
        await sender
        elapsed = time.perf_counter() - started
        worker_spent = worker_cpu(process) - worker_start
        cpu = time.process_time() - cpu_start + worker_spent
        # CPU seconds of this process (every thread: the event loop, SQLite's, the sender's) and of the
        # prepare worker, per record: what the collector costs, whatever else the machine is doing.
        print(
            f"CPU: {cpu:.1f}s = {cpu / records * 1e6:.0f} us per record ({records / cpu:,.0f} records per CPU second)"
            + (f"; of it the prepare worker {worker_spent / records * 1e6:.0f} us" if worker else "; no prepare worker")
        )
        print(
            f"SMDR over TCP into cdr.raw: {records:,} records in {elapsed:.1f}s = {records / elapsed:,.0f} records/s; "
            f"RSS {rss_start / 2**20:.0f} MiB at start, {peak / 2**20:.0f} MiB peak "
            f"(payload {len(payload) / 2**20:.0f} MiB "
            "held by the sender in this same process)"
        )
        await runtime.stop()
        await broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", type=int, nargs="?", default=100_000)
    parser.add_argument("--no-worker", action="store_true", help="prepare the batches on the event loop")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.records, not arguments.no_worker))
