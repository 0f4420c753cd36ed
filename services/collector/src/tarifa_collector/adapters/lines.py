"""Cutting a byte stream into CDR lines: CRLF or LF, bounded length, the half line left at the end."""

from __future__ import annotations

from tarifa_collector.domain.records import MAX_LINE_BYTES


class LineSplitter:
    """Feed bytes, get complete lines (without their end); memory stays bounded on garbage.

    A line longer than `max_line` is handed out cut at `max_line + 1` bytes (the parser rejects
    it for its length) and the rest of it, up to the next line end, is dropped.
    """

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._max = max_line
        self._buffer = b""
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        parts = buffer.split(b"\n")
        self._buffer = parts.pop()
        lines: list[bytes] = []
        for part in parts:
            if self._discarding:
                self._discarding = False
                continue
            line = part[:-1] if part.endswith(b"\r") else part
            if line:
                lines.append(line if len(line) <= self._max else line[: self._max + 1])
        if self._discarding:
            self._buffer = b""
        elif len(self._buffer) > self._max:
            lines.append(self._buffer[: self._max + 1])
            self._buffer = b""
            self._discarding = True
        return lines

    def rest(self) -> bytes:
        """What is left without a line end (a record cut when the connection dropped)."""
        rest, self._buffer = self._buffer, b""
        return b"" if self._discarding else rest
