"""Words for people: what the command line and the reports print (no heavy imports)."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
