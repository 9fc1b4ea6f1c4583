"""Issue 9, power loss: the writer is killed with SIGKILL mid-write, over and over.

After every kill the store must open, pass ``PRAGMA integrity_check``, hold every write the
writer acknowledged (printed after the write returned), and its alert history chain must
verify. Two writers: the store's alert functions as the core and API call them (raise, update,
acknowledge, resolve), and the real core replaying a simulated scenario as fast as it can.
A last test checks, with strace, that an acknowledged alert write reached the disk (fdatasync
of the WAL) before it was acknowledged, which is what survives a real power cut.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from scanner.store.chain import ALERT_HISTORY_KEYS, verify_rows
from scanner.store.db import Store
from tests.helpers.daemons import Logged

WRITER = Path(__file__).with_name("alert_writer.py")
KILLS = 30


def _seed() -> int:
    seed = int(os.environ.get("CHECKPOINT_FAULT_SEED", random.randrange(1 << 30)))
    print(f"fault seed {seed} (set CHECKPOINT_FAULT_SEED to repeat)")
    return seed


def _run_and_kill(args: list[str], rng: random.Random, min_acks: int = 3) -> list[str]:
    """Start the writer, let it acknowledge a few writes, kill it at a random moment."""
    with Logged([sys.executable, str(WRITER), *args]) as writer:
        proc = writer.proc
        want = rng.randint(min_acks, min_acks + 40)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(1 for line in writer.stdout if line.strip()) >= want:
                break
            time.sleep(0.001)
        # A random instant after the last acknowledgement: usually inside the next write.
        time.sleep(rng.random() * 0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    acks = [line.strip() for line in writer.stdout if line.strip()]
    err = writer.err()
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert len(acks) >= min_acks, f"the writer acknowledged too little: {acks} {err[-2000:]}"
    return acks


def _check_store(db: Path) -> dict[str, list[str]]:
    """Integrity, the chain, and the events of every alert's history."""
    with sqlite3.connect(db, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = [dict(r) for r in conn.execute("SELECT * FROM alert_history ORDER BY seq")]
        history: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            history[row["alert_id"]].append(row["event"])
        published: dict[str, list[str]] = defaultdict(list)
        for row in conn.execute("SELECT data FROM events WHERE type = 'alert' ORDER BY id"):
            data = json.loads(row["data"])
            published[data["alert"]["id"]].append(data["event"])
    assert verify_rows(rows, ALERT_HISTORY_KEYS) == []
    # The history row and the live event are written in one transaction: never one alone.
    assert dict(published) == dict(history)
    # A store that was killed mid-write still opens and migrates for the next writer.
    Store(db).close()
    return history


def test_store_writes_survive_30_kills_mid_write(tmp_path: Path) -> None:
    rng = random.Random(_seed())
    db = tmp_path / "checkpoint.db"
    acknowledged: list[tuple[str, str]] = []
    for i in range(KILLS):
        acks = _run_and_kill(["store", str(db), f"r{i}"], rng)
        # Each acknowledgement line is `event alert_id`: its split is a pair.
        acknowledged.extend(tuple(a.split(" ", 1)) for a in acks)  # type: ignore[misc]
        history = _check_store(db)
        for event, alert_id in acknowledged:
            assert event in history.get(alert_id, []), (
                f"kill {i}: acknowledged {event} of {alert_id} lost"
            )
        with sqlite3.connect(db) as conn:
            states = dict(conn.execute("SELECT id, state FROM alerts"))
            acked = {r[0] for r in conn.execute("SELECT id FROM alerts WHERE acked_ts IS NOT NULL")}
        for event, alert_id in acknowledged:
            assert alert_id in states
            if event == "resolved":
                assert states[alert_id] == "resolved"
            if event == "acknowledged":
                assert alert_id in acked
        # Each alert's history is a prefix of the full lifecycle: nothing half-written.
        full = ["raised", "updated", "acknowledged", "resolved"]
        for alert_id, events in history.items():
            assert events == full[: len(events)], (alert_id, events)
    print(f"{KILLS} kills, {len(acknowledged)} acknowledged writes, all present")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scanner.sim.scenario import simulate

    out = tmp_path_factory.mktemp("scenario")
    simulate(3, 6, out, profile="demo", sdr=False)
    return out


def test_core_on_a_replay_survives_30_kills(tmp_path: Path, scenario: Path) -> None:
    rng = random.Random(_seed())
    db = tmp_path / "checkpoint.db"
    acknowledged: list[tuple[str, str]] = []
    for i in range(KILLS):
        # Each run continues the timeline a day later, as a core restarted after a power cut.
        acks = _run_and_kill(["core", str(db), str(scenario), str(i * 86_400.0)], rng, 1)
        # Each acknowledgement line is `event alert_id`: its split is a pair.
        acknowledged.extend(tuple(a.split(" ", 1)) for a in acks)  # type: ignore[misc]
        history = _check_store(db)
        for event, alert_id in acknowledged:
            assert event in history.get(alert_id, []), (
                f"kill {i}: acknowledged {event} of {alert_id} lost"
            )
    with sqlite3.connect(db) as conn:
        sightings = conn.execute("SELECT COUNT(*) FROM sightings").fetchone()[0]
    print(f"{KILLS} kills, {len(acknowledged)} acknowledged alert lines, {sightings} sightings")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_acknowledged_alert_writes_are_synced_before_the_acknowledgement(tmp_path: Path) -> None:
    """SIGKILL leaves the page cache; a power cut does not. What was acknowledged must have been
    fdatasync'ed to the WAL before the acknowledgement was written."""
    db = tmp_path / "checkpoint.db"
    Store(db).close()
    trace = tmp_path / "trace.txt"
    proc = subprocess.Popen(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=pwrite64,write,fsync,fdatasync",
            "-y",
            "-o",
            str(trace),
            sys.executable,
            str(WRITER),
            "store",
            str(db),
            "s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(20)]
    proc.kill()
    proc.wait()
    assert all(lines), lines
    wal = f"{db.name}-wal"
    dirty = False  # a WAL write not yet synced
    acks = syncs = 0
    for line in trace.read_text().splitlines():
        if wal in line and "pwrite64(" in line:
            dirty = True
        elif wal in line and ("fdatasync(" in line or "fsync(" in line):
            dirty = False
            syncs += 1
        elif "write(1<" in line:
            acks += 1
            assert not dirty, f"acknowledgement {acks} was written before the WAL was synced"
    assert acks >= 20
    assert syncs >= acks
