"""Measure before building: would the SMDR prepare step pay in a worker process?

Run: .venv/bin/python bench/collector_prepare_handback.py [--rounds 7]
One 1 MiB batch of the TCP bench's lines (17, 30, 31 and 34 fields, each line its own call), the
service's GC threshold (10,000). CPU time per record, minimum (and median) of `--rounds`:

- `prepare_lines` in the service's process, what a worker would take off its event loop;
- the worker's input, (source, lines), pickled and unpickled;
- the whole `PreparedBatch` pickled (in the worker) and unpickled (in the service);
- a compact hand-back: the archive rows as tuples, per call its record id, call id, start and
  JSON bytes, the rejections, the duplicate count and the raw lines of legs whose call is not
  complete in the batch; pickled, then unpickled and turned back into the service's
  `PublishableCall`s, without their `data` dict (the store and the outbox need the bytes) and
  with it decoded again (what the emitted `Event` holds today).

A worker pays only if what the service spends receiving a batch is well under what it saves.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from tarifa_collector.domain.records import PublishableCall, SourceContext
from tarifa_collector.domain.sources import RecordFormat
from tarifa_collector.fake_ipoffice import smdr_line
from tarifa_collector.handlers import PreparedBatch, prepare_lines

BATCH_BYTES = 1 << 20


def batch_lines() -> list[bytes]:
    lines: list[bytes] = []
    size, n = 0, 0
    while size < BATCH_BYTES:
        line = smdr_line(1_000_000 + n, fields=(17, 30, 31, 34)[n % 4])
        lines.append(line)
        size += len(line)
        n += 1
    return lines


def compact(batch: PreparedBatch, *, with_data: bool = False) -> tuple[Any, ...]:
    """What the service needs of a prepared batch, as plain tuples, strings and bytes (`with_data`:
    and each call's `data` dict, so that the service need not decode it again)."""
    calls = [
        (c.record_id, c.call_id, c.started_at, payload, c.data if with_data else None)
        for c, payload in batch.calls.values()
    ]
    finished = {c.call_id for c, _ in batch.calls.values()}
    pending = [leg.raw for leg in batch.legs.values() if leg.call_id not in finished]
    return [tuple(row) for row in batch.archive], calls, batch.finals, batch.rejections, batch.duplicates, pending


def received(data: bytes, source: SourceContext, *, decode: bool = False) -> list[tuple[PublishableCall, bytes]]:
    """The service's side of the compact hand-back: unpickle, and the calls as the store takes them
    (with `decode`, each call's `data` dict read back from its JSON, for the emitted `Event`)."""
    _archive, calls, _finals, _rejections, _duplicates, _pending = pickle.loads(data)
    tenant, source_id = source.tenant, source.source_id
    return [
        (
            PublishableCall(
                record_id, tenant, source_id, call_id, started_at, data or (orjson.loads(payload) if decode else {})
            ),
            payload,
        )
        for record_id, call_id, started_at, payload, data in calls
    ]


def timed(rounds: int, records: int, action: Callable[[], object]) -> tuple[float, float]:
    """(minimum, median) CPU µs per record of `action` over `rounds`."""
    spent = []
    for _ in range(rounds):
        started = time.process_time()
        action()
        spent.append((time.process_time() - started) / records * 1e6)
    return min(spent), statistics.median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    gc.set_threshold(10_000)
    source = SourceContext(tenant="bench", source_id="pbx", source_kind="avaya_smdr", time_zone="America/Sao_Paulo")
    lines = batch_lines()
    records = len(lines)
    batch = prepare_lines(source, RecordFormat.AVAYA_SMDR, lines)
    assert len(batch.calls) == records, f"{len(batch.calls)} calls of {records} lines"
    given = pickle.dumps((source, lines), protocol=pickle.HIGHEST_PROTOCOL)
    whole = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
    small = pickle.dumps(compact(batch), protocol=pickle.HIGHEST_PROTOCOL)
    dicts = pickle.dumps(compact(batch, with_data=True), protocol=pickle.HIGHEST_PROTOCOL)
    assert len(received(small, source)) == records
    print(f"one batch: {records:,} records, {sum(map(len, lines)) / 2**20:.2f} MiB of lines")
    rows = [
        (
            "prepare_lines in the service (what a worker saves it)",
            lambda: prepare_lines(source, RecordFormat.AVAYA_SMDR, lines),
            "",
        ),
        (
            "input pickled (service)",
            lambda: pickle.dumps((source, lines), protocol=pickle.HIGHEST_PROTOCOL),
            f"{len(given) / 2**20:.1f} MiB",
        ),
        ("input unpickled (worker)", lambda: pickle.loads(given), ""),
        (
            "PreparedBatch pickled (worker)",
            lambda: pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL),
            f"{len(whole) / 2**20:.1f} MiB",
        ),
        ("PreparedBatch unpickled (service)", lambda: pickle.loads(whole), ""),
        (
            "compact hand-back built and pickled (worker)",
            lambda: pickle.dumps(compact(batch), protocol=pickle.HIGHEST_PROTOCOL),
            f"{len(small) / 2**20:.1f} MiB",
        ),
        ("compact hand-back unpickled and rebuilt (service)", lambda: received(small, source), ""),
        ("  the same, each call's data dict decoded (orjson)", lambda: received(small, source, decode=True), ""),
        (
            "  the same, each call's data dict pickled instead (worker)",
            lambda: pickle.dumps(compact(batch, with_data=True), protocol=pickle.HIGHEST_PROTOCOL),
            f"{len(dicts) / 2**20:.1f} MiB",
        ),
        ("  ... and unpickled (service)", lambda: received(dicts, source), ""),
    ]
    for label, action, size in rows:
        best, median = timed(args.rounds, records, action)
        print(f"  {label:<52} {best:6.2f} µs a record (median {median:6.2f}) {size}")


if __name__ == "__main__":
    main()
