"""Importers for capture formats of other tools (filled in below)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from scanner.observations import BleAdvert


def sniff(head: bytes) -> str | None:
    """The capture format named by a file's first bytes, or None for ``ble.jsonl``."""
    del head
    return None


def read_capture(path: Path, counters: Counter[str]) -> Iterator[BleAdvert]:
    """Adverts from a capture file."""
    del path, counters
    return iter(())
