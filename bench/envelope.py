"""CPU per event of the shared envelope code, without a broker or a database: what a service pays per message.

    .venv/bin/python bench/envelope.py [--events 100000]

Each line is `time.process_time` per event, best of five rounds, for one step of the path:
encoding an event for the outbox (`outbox_message`), the outbox's header text (`headers_text`) and
back (`parse_headers`), and decoding a consumed message.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from delivery import events as delivery_events  # the same events as the delivery bench (bench/ is on the path)

from tarifa_common.events import decode, dumps, encode
from tarifa_common.messaging import headers_text, outbox_message, parse_headers


def measure(label: str, n: int, step: Callable[[], object]) -> None:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        step()
        best = min(best, time.process_time() - started)
    print(f"{label:<34} {best / n * 1e6:6.2f} us per event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    n = parser.parse_args().events
    events = delivery_events(n)
    datas = [dumps(e.data) for e in events]
    pairs = list(zip(events, datas, strict=True))
    measure("outbox_message (data serialised)", n, lambda: [outbox_message(e, "t", e.subject, d) for e, d in pairs])
    messages = [outbox_message(e, "t", e.subject, d) for e, d in pairs]
    measure("headers_text", n, lambda: [headers_text(m.record.headers) for m in messages])
    texts = [headers_text(m.record.headers) for m in messages]
    measure("parse_headers", n, lambda: [parse_headers(t) for t in texts])
    records = [encode(e, e.subject) for e in events]
    measure("decode", n, lambda: [decode(r.headers, r.key, r.value) for r in records])


if __name__ == "__main__":
    main()
