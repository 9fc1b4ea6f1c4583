"""Issue 9, kill -9 of the all-in-one runner (``checkpoint demo``: sources, core and API in one
process, as ``checkpoint run`` is on a small appliance) in the middle of a busy replay.

The process is killed with SIGKILL three times while it replays at 4x and writes alerts,
sightings and health, and restarted on the same data directory each time, as systemd would.
After each restart the API serves again; at the end every alert stored before any kill is still
there with its history only ever extended, no alert was raised twice, the live-event feed and
the history agree, at most one handset alert was open at any moment (the restarted core adopts
the alert its predecessor left open), and the store passes integrity_check with intact chains.
"""

from __future__ import annotations

import itertools
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from scanner.export.seal_key import read_keys
from scanner.store.chain import ALERT_HISTORY_KEYS, AUDIT_KEYS, derive_chain_key, verify_rows

KILLS = 3


def wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except (sqlite3.Error, httpx.HTTPError):
            pass
        time.sleep(0.1)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def query(db: Path, sql: str) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql))


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in query(db, "SELECT alert_id, seq, event, hash FROM alert_history ORDER BY seq"):
        out.setdefault(row["alert_id"], []).append((row["seq"], row["event"], row["hash"]))
    return out


def test_kill_9_of_the_all_in_one_runner_keeps_the_store_whole(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "checkpoint.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as err:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scanner.cli.main",
                    "demo",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(data),
                    "--speed",
                    "4",
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    kept: dict[str, list[tuple[Any, ...]]] = {}
    proc = start()
    try:
        for kill in range(KILLS):
            assert wait_for(lambda: httpx.get(url + "/healthz", timeout=2).status_code == 200, 60)
            # Let it write: at least one more history row than at the last kill.
            rows = sum(len(h) for h in kept.values())

            def wrote_more(n: int = rows) -> bool:
                return sum(len(h) for h in snapshot(db).values()) > n

            assert wait_for(wrote_more, 90), log.read_text()[-3000:]
            time.sleep(0.5 + kill)  # a different moment in the replay each time
            kept = snapshot(db)
            proc.kill()
            assert proc.wait(timeout=10) == -signal.SIGKILL
            assert query(db, "PRAGMA integrity_check")[0][0] == "ok"
            proc = start()
        assert wait_for(lambda: httpx.get(url + "/healthz", timeout=2).status_code == 200, 60)
        time.sleep(2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]

    after = snapshot(db)
    for alert_id, history in kept.items():
        assert after.get(alert_id, [])[: len(history)] == history, alert_id
    for alert_id, history in after.items():
        assert [event for _s, event, _h in history].count("raised") == 1, alert_id
    published: dict[str, list[str]] = {}
    for row in query(db, "SELECT data FROM events WHERE type = 'alert' ORDER BY id"):
        body = json.loads(row["data"])
        published.setdefault(body["alert"]["id"], []).append(body["event"])
    assert published == {a: [e for _s, e, _h in h] for a, h in after.items()}
    spans = sorted(
        (r["raised_ts"], r["resolved_ts"] or float("inf"))
        for r in query(db, "SELECT raised_ts, resolved_ts FROM alerts WHERE kind = 'handset'")
    )
    for (_a0, a1), (b0, _b1) in itertools.pairwise(spans):
        assert b0 >= a1, f"overlapping handset alerts after restarts: {spans}"
    assert query(db, "PRAGMA integrity_check")[0][0] == "ok"
    history_rows = [dict(r) for r in query(db, "SELECT * FROM alert_history ORDER BY seq")]
    assert verify_rows(history_rows, ALERT_HISTORY_KEYS, _chain_key(db)) == []
    audit_rows = [dict(r) for r in query(db, "SELECT * FROM audit ORDER BY seq")]
    assert verify_rows(audit_rows, AUDIT_KEYS) == []
    print(f"{KILLS} kills; alerts {len(after)}, history rows {len(history_rows)}")
    print({a: [e for _s, e, _h in h] for a, h in after.items()})


def _chain_key(db: Path) -> bytes:
    """The core keys the alert history with the development key it made beside the store."""
    return derive_chain_key(read_keys(db.parent / "seal.key").current)
