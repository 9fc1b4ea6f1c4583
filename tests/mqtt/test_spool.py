"""The node's disk spool: order, budget (drops counted), a torn tail, a restart mid-replay."""

from __future__ import annotations

from pathlib import Path

from scanner.mqtt.spool import MIN_SEGMENT_BYTES, Spool


def payload(n: int, size: int = 1000) -> bytes:
    return f"{n:08d}".encode() * (size // 8)


def drain(spool: Spool) -> list[int]:
    out = []
    while (entry := spool.read_next()) is not None:
        out.append(int(entry.payload[:8]))
        spool.commit(entry)
    return out


def test_batches_come_back_in_order_and_are_forgotten_once_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10 * 1024 * 1024)
    for n in range(300):
        assert spool.append(payload(n), records=7)
    assert spool.health()["pending_records"] == 2100
    assert drain(spool) == list(range(300))
    assert spool.health()["pending_batches"] == 0
    assert spool.size_bytes() == 0
    assert not list(tmp_path.glob("*.seg"))


def test_over_budget_the_oldest_are_dropped_and_counted(tmp_path: Path) -> None:
    budget = 8 * MIN_SEGMENT_BYTES
    spool = Spool(tmp_path, budget)
    n = 0
    while spool.health()["dropped_batches"] == 0:
        spool.append(payload(n, 4000), records=10)
        n += 1
    for _ in range(200):
        spool.append(payload(n, 4000), records=10)
        n += 1
    health = spool.health()
    assert health["bytes"] <= budget
    kept = drain(spool)
    # The newest are kept, in order, and every batch is either kept or counted as dropped.
    assert kept == list(range(n - len(kept), n))
    assert health["dropped_batches"] + len(kept) == n
    assert health["dropped_records"] == 10 * health["dropped_batches"]


def test_a_restart_replays_from_the_last_acknowledged_batch(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10 * 1024 * 1024)
    for n in range(50):
        spool.append(payload(n), records=1)
    for _ in range(20):
        entry = spool.read_next()
        assert entry is not None
        spool.commit(entry)
    # Five more were read (published) but never acknowledged when the node stopped.
    for _ in range(5):
        spool.read_next()
    again = Spool(tmp_path, 10 * 1024 * 1024)
    assert again.health()["pending_batches"] == 30
    assert drain(again) == list(range(20, 50))


def test_a_torn_last_entry_is_cut_off_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10 * 1024 * 1024)
    for n in range(10):
        spool.append(payload(n), records=1)
    segment = sorted(tmp_path.glob("*.seg"))[-1]
    # Power lost in the middle of the last write.
    data = segment.read_bytes()
    segment.write_bytes(data[:-300])
    again = Spool(tmp_path, 10 * 1024 * 1024)
    assert drain(again) == list(range(9))
    assert again.health()["torn_entries"] == 1
