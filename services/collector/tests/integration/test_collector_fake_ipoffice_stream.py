"""The IP Office simulator that `tarifa collector fake-ipoffice` runs: real TCP, records our parser reads."""

from __future__ import annotations

import asyncio

from tarifa_collector.domain.records import SourceContext
from tarifa_collector.domain.smdr import SmdrLeg, parse_line
from tarifa_collector.fake_ipoffice import stream_calls

SOURCE = SourceContext(tenant="demo", source_id="pbx", source_kind="smdr_listener", time_zone="America/Sao_Paulo")


async def test_the_simulator_streams_calls_our_parser_reads_and_reconnects_after_a_dropped_link() -> None:
    received: list[bytes] = []
    links = 0

    async def listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal links
        links += 1
        first_link = links == 1
        while line := await reader.readline():
            received.append(line)
            if first_link and len(received) == 3:  # the collector restarts: the link drops
                writer.transport.abort()
                return
        writer.close()

    server = await asyncio.start_server(listener, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sent = await asyncio.wait_for(stream_calls("127.0.0.1", port, every=0.01, count=12, seed=7), 30)
    finally:
        server.close()
        await server.wait_closed()

    assert sent == 12
    assert links >= 2
    legs = [parse_line(line, SOURCE) for line in received]
    assert all(isinstance(leg, SmdrLeg) for leg in legs), legs
    ids = [int(leg.call_id) for leg in legs if isinstance(leg, SmdrLeg)]
    assert sorted(set(ids)) == list(range(min(ids), min(ids) + 12))  # every call arrived
    by_id: dict[int, set[bytes]] = {}
    for call_id, line in zip(ids, received, strict=True):
        by_id.setdefault(call_id, set()).add(line)
    assert all(len(lines) == 1 for lines in by_id.values()), by_id  # a re-sent record is the same bytes
    assert len(ids) > 12  # after the drop the buffer was sent again, as IP Office does
    assert {leg.caller for leg in legs if isinstance(leg, SmdrLeg)} <= {"201", "202", "203", "204"}
    assert all(line.endswith(b"\r\n") for line in received)
