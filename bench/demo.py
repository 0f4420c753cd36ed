"""How long `tarifa up --demo` takes from the command to the end of its story, first and second run.

    .venv/bin/python bench/demo.py [--runs 1]

Each run starts on a fresh data directory (the story waits about a minute for the silent PBX),
then starts again on the same directory (everything is seeded, the alert has fired: the
idempotent path). Free ports and throw-away directories, so it runs beside a platform already up.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tarifa_common.broker import free_port, port_is_open
from tarifa_demo.seed import DemoPorts
from tarifa_demo.story import FINISHED

TARIFA = Path(sys.executable).parent / "tarifa"


def free_offset() -> int:
    for offset in (random.randrange(1000, 20000, 10) for _ in range(100)):
        demo = DemoPorts.with_offset(offset)
        ports = [p + offset for p in range(8101, 8106)] + [demo.smdr_hotel, demo.smdr_branch, demo.summit, demo.sms]
        if not any(port_is_open("127.0.0.1", p) for p in [*ports, demo.smtp]):
            return offset
    raise SystemExit("no free block of ports")


def story_time(data: str, offset: int) -> tuple[float, float]:
    """Seconds from the command to 'Tarifa is up' and to the end of the story."""
    started = time.perf_counter()
    command = [str(TARIFA), "up", "--demo", "--data-dir", data, "--broker-port", str(free_port())]
    process = subprocess.Popen(
        [*command, "--port-offset", str(offset)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stdout is not None
    up = 0.0
    try:
        for line in process.stdout:
            if "Tarifa is up" in line:
                up = time.perf_counter() - started
            if "failed:" in line:
                raise SystemExit(f"the demo failed: {line.strip()}")
            if FINISHED in line:
                return up, time.perf_counter() - started
        raise SystemExit(f"tarifa up --demo ended before its story (exit {process.wait()})")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    firsts, seconds = [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as data:
            offset = free_offset()
            up, first = story_time(data, offset)
            up_again, second = story_time(data, offset)
        firsts.append(first)
        seconds.append(second)
        print(
            f"run {run}: first run up in {up:.1f}s, story done at {first:.1f}s; "
            f"second run up in {up_again:.1f}s, story done at {second:.1f}s",
            flush=True,
        )
    load = os.getloadavg()[0]
    print(
        f"tarifa up --demo to story finished: first run median {statistics.median(firsts):.0f}s, "
        f"second run median {statistics.median(seconds):.0f}s over {args.runs} run(s); load average {load:.1f} "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
