"""The main loop's heap trim gives freed pages back to the system, at most once a period."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.runtime.heap import HeapTrimmer


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_trim_returns_the_pages_a_burst_freed() -> None:
    heap = HeapTrimmer(every_s=60.0)
    if not heap.available:
        pytest.skip("this C library has no malloc_trim")
    heap.maybe(0.0)  # start from a trimmed heap
    # A burst of 8 kB buffers (under glibc's mmap threshold, so from the heap), then all but
    # one in sixteen freed: the pages between the survivors are free but stay resident.
    burst = [bytearray(8192) for _ in range(12_000)]
    survivors = burst[::16]
    del burst
    before = _rss_kb()
    heap.maybe(30.0)  # within the period: nothing happens
    assert heap.trims == 1
    assert _rss_kb() > before - 4096
    heap.maybe(60.0)
    assert heap.trims == 2
    # ~90 MB allocated, ~84 MB freed in whole pages: most of it leaves the process.
    assert _rss_kb() < before - 40_000, (before, _rss_kb())
    assert len(survivors) == 750
