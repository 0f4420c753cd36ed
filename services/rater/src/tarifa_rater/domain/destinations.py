"""Destinations as prefix lists; the longest matching prefix wins.

Lookup keeps one dict per prefix length and tries the lengths that exist, longest first: at
most a dozen dict probes per call whatever the table's size (50,000 prefixes or more).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class PrefixTable(Generic[T]):
    """Maps number prefixes (E.164 digits) to values; `match` returns the longest prefix's value."""

    __slots__ = ("_by_length", "_lengths")

    def __init__(self, entries: Iterable[tuple[str, T]] = ()) -> None:
        self._by_length: dict[int, dict[str, T]] = {}
        self._lengths: tuple[int, ...] = ()
        for prefix, value in entries:
            self._by_length.setdefault(len(prefix), {})[prefix] = value
        self._lengths = tuple(sorted(self._by_length, reverse=True))

    def __len__(self) -> int:
        return sum(len(table) for table in self._by_length.values())

    def match(self, number: str) -> tuple[str, T] | None:
        size = len(number)
        for length in self._lengths:
            if length <= size:
                prefix = number[:length]
                value = self._by_length[length].get(prefix)
                if value is not None:
                    return prefix, value
        return None
