"""Counted nouns as a person writes them: "1 row", "2 rows", "0 campaigns"."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, made plural (by ``plural``, else an added "s") unless ``n`` is 1."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
