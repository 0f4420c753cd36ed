"""Destinations as prefix lists; the longest matching prefix wins.

Lookup keeps one dict per prefix length, and for each two-digit head the lengths its prefixes
have, longest first: a number probes only the lengths that exist under its first two digits
(none at all for a national number when the table holds only foreign prefixes), whatever the
table's size (50,000 prefixes or more).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")
HEAD = 2  # digits of the head that selects the lengths to probe


class PrefixTable(Generic[T]):
    """Maps number prefixes (E.164 digits) to values; `match` returns the longest prefix's value."""

    __slots__ = ("_by_length", "_lengths_by_head", "_short")

    def __init__(self, entries: Iterable[tuple[str, T]] = ()) -> None:
        self._by_length: dict[int, dict[str, T]] = {}
        heads: dict[str, set[int]] = {}
        short: list[tuple[int, dict[str, T]]] = []
        for prefix, value in entries:
            self._by_length.setdefault(len(prefix), {})[prefix] = value
            if len(prefix) >= HEAD:
                heads.setdefault(prefix[:HEAD], set()).add(len(prefix))
        for length in sorted(self._by_length, reverse=True):
            if length < HEAD:
                short.append((length, self._by_length[length]))
        self._lengths_by_head = {head: tuple(sorted(lengths, reverse=True)) for head, lengths in heads.items()}
        self._short = tuple(short)  # prefixes shorter than the head ("1" for NANP), longest first

    def __len__(self) -> int:
        return sum(len(table) for table in self._by_length.values())

    def lookup(self, number: str) -> T | None:
        """The value of the longest prefix of `number`, or None (`match` without the prefix)."""
        size = len(number)
        by_length = self._by_length
        for length in self._lengths_by_head.get(number[:HEAD], ()):
            if length <= size:
                value = by_length[length].get(number[:length])
                if value is not None:
                    return value
        for length, table in self._short:
            if length <= size:
                value = table.get(number[:length])
                if value is not None:
                    return value
        return None

    def match(self, number: str) -> tuple[str, T] | None:
        size = len(number)
        by_length = self._by_length
        for length in self._lengths_by_head.get(number[:HEAD], ()):
            if length <= size:
                prefix = number[:length]
                value = by_length[length].get(prefix)
                if value is not None:
                    return prefix, value
        for length, table in self._short:
            if length <= size:
                prefix = number[:length]
                value = table.get(prefix)
                if value is not None:
                    return prefix, value
        return None
