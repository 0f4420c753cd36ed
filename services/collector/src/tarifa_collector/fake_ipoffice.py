"""A fake Avaya IP Office SMDR output for tests, the demo and benchmarks; it misbehaves on purpose.

It plays both roles IP Office can take: the TCP server our SMDR client connects to (it sends
its whole buffer to each new connection, as IP Office re-sends what it could not confirm), and
the TCP client that connects to our SMDR listener. It can drop a link in the middle of a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta


def smdr_line(
    call_id: int,
    *,
    start: str = "2026/11/02 09:28:41",
    connected: str = "00:01:04",
    ring: int = 7,
    caller: str = "203",
    direction: str = "O",
    dialled: str = "901133334444",
    internal: int = 0,
    continuation: int = 0,
    party1: str = "E203",
    party2: str = "T9001",
    fields: int = 17,
) -> bytes:
    """One SMDR record as IP Office writes it (CRLF included), padded to `fields` fields."""
    values = [
        start,
        connected,
        str(ring),
        caller,
        direction,
        dialled,
        dialled,
        "",
        str(internal),
        str(call_id),
        str(continuation),
        party1,
        f"Extn{party1[1:]}" if party1.startswith("E") else "Line 1.1",
        party2,
        f"Extn{party2[1:]}" if party2.startswith("E") else "Line 1.1",
        "0",
        "0",
    ]
    values += [""] * (fields - len(values))
    return (",".join(values) + "\r\n").encode()


class FakeIpOffice:
    """IP Office's SMDR output: a buffer of records and the links it sends them on."""

    def __init__(self) -> None:
        self.buffer: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.port = 0

    # --- IP Office as the TCP server (our smdr_client connects) -------------------------------

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._on_connect, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _on_connect(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        writer.write(b"".join(self.buffer))  # after a reconnect IP Office re-sends its buffer
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def emit(self, *lines: bytes) -> None:
        """Record calls and send them on every open link."""
        self.buffer += lines
        for writer in list(self._writers):
            writer.write(b"".join(lines))
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    async def drop_links(self, half_line: bytes = b"") -> None:
        """Send `half_line` (a record cut short) and close every open link abruptly."""
        for writer in list(self._writers):
            if half_line:
                writer.write(half_line)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        await self.drop_links()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # --- IP Office as the TCP client (our smdr_listener accepts) ------------------------------

    @staticmethod
    async def send_to(host: str, port: int, lines: Iterable[bytes], *, cut_at: int | None = None) -> None:
        """Connect, send `lines`, close; with `cut_at`, the link drops after that many bytes (mid-line)."""
        _, writer = await asyncio.open_connection(host, port)
        payload = b"".join(lines)
        if cut_at is not None:
            payload = payload[:cut_at]
        writer.write(payload)
        await writer.drain()
        if cut_at is not None:
            writer.transport.abort()
            return
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


# What a small office dials in a day: (dialled, caller extension, talk seconds range, answered).
_DAY_OF_CALLS = [
    ("033334444", "201", (20, 400), True),  # local fixed
    ("0211987654321", "202", (31, 900), True),  # long distance to a Rio mobile, carrier 21
    ("011987651234", "203", (5, 240), True),  # mobile in the home area
    ("00211442071234567", "201", (60, 1200), True),  # international, carrier 21
    ("033335555", "204", (1, 2), True),  # under 3 seconds
    ("033336666", "202", (0, 0), False),  # not answered
]


def office_call(call_id: int, at: datetime, pick: random.Random) -> bytes:
    """One realistic outgoing call as IP Office reports it when it ends."""
    dialled, extension, (shortest, longest), answered = pick.choice(_DAY_OF_CALLS)
    talk = pick.randint(shortest, longest) if answered else 0
    return smdr_line(
        call_id,
        start=at.strftime("%Y/%m/%d %H:%M:%S"),
        connected=f"{talk // 3600:02d}:{talk % 3600 // 60:02d}:{talk % 60:02d}",
        ring=pick.randint(2, 20),
        caller=extension,
        dialled=dialled,
        party1=f"E{extension}",
    )


async def stream_calls(
    host: str,
    port: int,
    *,
    every: float,
    count: int | None = None,
    seed: int | None = None,
    clock: Callable[[], datetime] = datetime.now,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Play IP Office as the TCP client of our SMDR listener: a call every `every` seconds.

    Dialled numbers, durations and answers vary (local, mobile, long distance, international,
    under 3 s, unanswered); call ids grow from a random start, as after an IP Office reboot. A
    dropped link is reconnected with backoff and, as IP Office does, the last records are sent
    again first: a write into a link the other end already closed succeeds locally and is lost,
    so only re-sending covers it (the collector drops the duplicates). Returns how many calls
    were sent (re-sent ones not counted again).
    """
    pick = random.Random(seed)
    call_id = pick.randint(1_000_000, 9_000_000)
    sent = 0
    backoff = 0.5
    unconfirmed: deque[bytes] = deque(maxlen=32)  # IP Office's SMDR buffer
    while count is None or sent < count:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        backoff = 0.5
        try:
            writer.write(b"".join(unconfirmed))
            while count is None or sent < count:
                started = clock() - timedelta(seconds=pick.randint(30, 900))
                unconfirmed.append(office_call(call_id, started, pick))  # made once, whatever the link does
                call_id += 1
                sent += 1
                writer.write(unconfirmed[-1])
                await writer.drain()
                if on_sent is not None:
                    on_sent(sent)
                if count is None or sent < count:
                    await asyncio.sleep(every)
        except ConnectionError:
            continue
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    return sent
