"""SMDR parsing speed on one core: lines per second through `parse_line` (target: 200,000/s).

Best and median of five rounds (the machine is shared).

Run: .venv/bin/python bench/collector_smdr_parse.py [LINES]
"""

from __future__ import annotations

import sys
import time

from tarifa_collector.domain.records import SourceContext
from tarifa_collector.domain.smdr import SmdrLeg, parse_line
from tarifa_collector.fake_ipoffice import smdr_line


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    source = SourceContext(tenant="bench", source_id="pbx", source_kind="avaya_smdr", time_zone="America/Sao_Paulo")
    lines = [smdr_line(1_000_000 + n, fields=(17, 30, 31, 34)[n % 4]) for n in range(count)]
    # The machine is shared: five rounds, and the best and the median of them.
    rates = []
    for _ in range(5):
        started = time.perf_counter()
        accepted = sum(isinstance(parse_line(line, source), SmdrLeg) for line in lines)
        elapsed = time.perf_counter() - started
        assert accepted == count
        rates.append(count / elapsed)
    rates.sort()
    reference = time.perf_counter()
    sum(range(10**7))
    reference = time.perf_counter() - reference
    print(f"SMDR parse: {count} lines x 5 rounds: best {rates[-1]:,.0f} lines/s, median {rates[2]:,.0f} (one core)")
    print(f"machine reference: sum(range(10**7)) took {reference:.2f}s (an idle modern core: about 0.15s)")


if __name__ == "__main__":
    main()
