"""How long `tarifa up` takes to bring the broker and every service to `/readyz`, and to stop.

    .venv/bin/python bench/startup.py [--runs 3]

Uses free ports and a throw-away data directory, so it runs beside a platform already up.
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

TARIFA = Path(sys.executable).parent / "tarifa"


def one_run() -> tuple[float, float]:
    offset = next(
        o
        for o in (random.randrange(1000, 20000, 10) for _ in range(100))
        if not any(port_is_open("127.0.0.1", p + o) for p in range(8101, 8106))
    )
    with tempfile.TemporaryDirectory() as data:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(TARIFA), "up", "--data-dir", data, "--broker-port", str(free_port()), "--port-offset", str(offset)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert process.stdout is not None
        for line in process.stdout:
            if "Tarifa is up" in line:
                break
        else:
            raise SystemExit(f"tarifa up did not come up (exit {process.wait()})")
        up = time.perf_counter() - started
        stopping = time.perf_counter()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        return up, time.perf_counter() - stopping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ups, downs = [], []
    for run in range(1, args.runs + 1):
        up, down = one_run()
        ups.append(up)
        downs.append(down)
        print(f"run {run}: ready in {up:.1f}s, stopped in {down:.1f}s", flush=True)
    print(
        f"tarifa up to ready: median {statistics.median(ups):.1f}s (max {max(ups):.1f}s); "
        f"stop: median {statistics.median(downs):.1f}s over {args.runs} runs on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
