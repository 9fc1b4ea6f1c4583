"""Retention: a flood of observations against a 50 MB budget sheds detail, never alerts."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from scanner.store import alerts as alert_store
from scanner.store.chain import ALERT_HISTORY_KEYS, verify_rows
from scanner.store.db import Store
from scanner.store.health import list_sensors
from scanner.store.retention import RetentionPolicy, enforce, store_bytes

from .conftest import radiotap_probe

MB = 1024 * 1024
T0 = 1_764_000_000.0


def _alert(n: int, ts: float) -> alert_store.AlertRecord:
    return alert_store.AlertRecord(
        id=f"flood-{n:04d}",
        kind="handset",
        state="open",
        title="Handset in zone",
        raised_ts=ts,
        updated_ts=ts,
        confidence=0.9,
        handsets=1,
        sensors=["wifi"],
        reasons=["probe requests"],
        device_ids=[f"dev-{n}"],
    )


def _flood_round(store: Store, rng: random.Random, ts: float, alert_id: str) -> None:
    """One burst of what a busy gate produces between two retention runs (~3.5 MB)."""
    with store.write() as conn:
        frames = []
        for k in range(1500):
            mac = f"da:{rng.randrange(256):02x}:{rng.randrange(256):02x}:4e:00:{k % 256:02x}"
            frame = radiotap_probe(mac, k, -60) + rng.randbytes(1300)
            frames.append(
                (
                    alert_id if k % 50 == 0 else None,
                    f"dev-{k}",
                    "wifi",
                    ts + k * 0.01,
                    "wifi_frame",
                    frame,
                )
            )
        conn.executemany(
            "INSERT INTO evidence (alert_id, device_id, radio, ts, format, payload) "
            "VALUES (?,?,?,?,?,?)",
            frames,
        )
        conn.executemany(
            "INSERT INTO sightings (device_id, radio, sensor, first_ts, last_ts, count, "
            "rssi_min, rssi_max, rssi_mean, identifier) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    f"dev-{rng.randrange(100000)}",
                    "wifi",
                    "wifi",
                    ts + k * 0.01,
                    ts + k * 0.01 + 50,
                    3,
                    -80.0,
                    -60.0,
                    -70.0,
                    f"da:00:00:00:{k // 256 % 256:02x}:{k % 256:02x}",
                )
                for k in range(2500)
            ],
        )


def test_flood_stays_under_budget_keeps_alerts_and_reports_shedding(tmp_path: Path) -> None:
    store = Store(tmp_path / "flood.db")
    policy = RetentionPolicy(budget_bytes=50 * MB)
    rng = random.Random(1234)
    raised: list[str] = []
    sizes_before: list[int] = []
    sizes_after: list[int] = []
    shed_total = 0
    rounds = 96  # about 190 MB of frames alone: more than three times the budget
    for r in range(rounds):
        ts = T0 + r * 600
        alert = _alert(r, ts)
        alert_store.raise_alert(store, alert)
        alert_store.acknowledge_alert(store, alert.id, ts + 30, "guard1")
        if r % 2:
            alert_store.resolve_alert(store, alert.id, ts + 300, "left_zone", 300.0)
        raised.append(alert.id)
        _flood_round(store, rng, ts, alert.id)
        sizes_before.append(store_bytes(store))
        report = enforce(store, policy, now=ts + 590)
        shed_total += report.shed_rows
        sizes_after.append(report.size_after)
        assert report.size_after <= policy.budget_bytes, (r, report)
    # The store never passed the budget, even between two retention runs.
    assert max(sizes_before) <= policy.budget_bytes, sizes_before
    assert max(sizes_after) <= policy.budget_bytes
    # The flood really was several times the budget, and most of its detail had to go.
    payload = rounds * 1500 * 1300  # the random part of the evidence payloads alone
    assert payload > 3 * policy.budget_bytes
    assert shed_total > 0.5 * rounds * 1500
    # No alert, no history record and no acknowledgement was lost; the chain is intact.
    assert sorted(a.id for a in alert_store.list_alerts(store, limit=1000)) == sorted(raised)
    history = [dict(r) for r in store.query("SELECT * FROM alert_history ORDER BY seq")]
    assert len(history) == rounds * 2 + rounds // 2
    assert verify_rows(history, ALERT_HISTORY_KEYS) == []
    # Health says so: the store row is degraded and counts what was shed, by kind.
    store_row = next(s for s in list_sensors(store) if s["sensor"] == "store")
    assert store_row["state"] == "degraded"
    assert "alerts are kept" in store_row["message"]
    counters = store_row["counters"]
    assert counters["shed_evidence_unlinked"] > 0
    assert sum(v for k, v in counters.items() if k.startswith("shed_")) == shed_total
    assert store_row["detail"]["budget_bytes"] == 50 * MB
    logged = store.query("SELECT state FROM health_log WHERE sensor = 'store'")
    assert [r["state"] for r in logged][:2] == ["ok", "degraded"]
    # Newest observations survive; the oldest were shed first.
    newest = store.query("SELECT MAX(ts) AS m, MIN(ts) AS n FROM evidence WHERE alert_id IS NULL")[
        0
    ]
    assert newest["m"] >= T0 + (rounds - 1) * 600
    assert newest["n"] > T0 + 600
    # An alert's evidence outlives raw records and goes whole or not at all (30 frames each).
    per_alert = store.query(
        "SELECT COUNT(*) AS n FROM evidence WHERE alert_id IS NOT NULL GROUP BY alert_id"
    )
    assert per_alert and all(r["n"] == 30 for r in per_alert)
    print(f"before retention (MB): {[round(s / MB, 1) for s in sizes_before]}")
    print(f"after retention (MB): {[round(s / MB, 1) for s in sizes_after]}")
    print(f"shed rows: {shed_total}; counters: {json.dumps(counters, sort_keys=True)}")
    store.close()
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("flood.db"))
    assert on_disk <= policy.budget_bytes


def test_age_limits_expire_detail_quietly(tmp_path: Path) -> None:
    store = Store(tmp_path / "age.db")
    now = T0 + 100 * 86400
    alert_store.raise_alert(store, _alert(1, T0))
    with store.write() as conn:
        for ts in (T0, now - 3600):
            conn.execute(
                "INSERT INTO evidence (alert_id, device_id, radio, ts, format, payload) "
                "VALUES ('flood-0001', 'dev-1', 'wifi', ?, 'wifi_frame', x'00')",
                (ts,),
            )
            conn.execute(
                "INSERT INTO sightings (device_id, radio, sensor, first_ts, last_ts, count, "
                "identifier) VALUES ('dev-1', 'wifi', 'wifi', ?, ?, 1, 'x')",
                (ts, ts),
            )
        # Raw records no alert asked for, as old as the alert's first frame.
        conn.execute(
            "INSERT INTO evidence (radio, ts, format, payload) "
            "VALUES ('wifi', ?, 'wifi_frame', x'00')",
            (T0,),
        )
    report = enforce(store, RetentionPolicy(), now=now)
    assert report.expired["evidence"] == 1 and report.expired["sightings"] == 1
    assert not report.shed and not report.over_budget
    # The alert's evidence outlives its sightings (90 days), whole: both of its frames stay.
    assert store.query("SELECT COUNT(*) AS n FROM evidence")[0]["n"] == 2
    assert report.expired.get("evidence_alert", 0) == 0
    assert [a.id for a in alert_store.list_alerts(store)] == ["flood-0001"]
    row = next(s for s in list_sensors(store) if s["sensor"] == "store")
    assert row["state"] == "ok"
    assert row["counters"] == {"expired_evidence": 1, "expired_events": 1, "expired_sightings": 1}
    # Past its own limit (180 days) the alert's evidence goes, all of it.
    later = enforce(store, RetentionPolicy(), now=now + 181 * 86400)
    assert later.expired["evidence_alert"] == 2
    assert store.query("SELECT COUNT(*) AS n FROM evidence")[0]["n"] == 0


def test_degraded_clears_after_quiet_hour(tmp_path: Path) -> None:
    store = Store(tmp_path / "q.db")
    policy = RetentionPolicy(budget_bytes=2 * MB, clear_after_s=3600)
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO evidence (radio, ts, format, payload) VALUES ('wifi', ?, 'wifi_frame', ?)",
            [(T0 + i, os.urandom(1500)) for i in range(2000)],
        )
    assert enforce(store, policy, now=T0 + 3000).shed_rows > 0
    assert enforce(store, policy, now=T0 + 3600).shed_rows == 0
    states = [s["state"] for s in list_sensors(store) if s["sensor"] == "store"]
    assert states == ["degraded"]  # shed 10 minutes ago: still degraded
    enforce(store, policy, now=T0 + 3000 + 3601)
    states = [s["state"] for s in list_sensors(store) if s["sensor"] == "store"]
    assert states == ["ok"]
    assert store_bytes(store) <= policy.budget_bytes


def test_policy_from_config_section() -> None:
    policy = RetentionPolicy.from_mapping({"budget_mb": 50, "evidence_days": 7, "path": "x"})
    assert policy.budget_bytes == 50 * MB and policy.evidence_days == 7.0
    try:
        RetentionPolicy.from_mapping({"low_water": 0.9, "high_water": 0.5})
    except ValueError as exc:
        assert "low_water" in str(exc)
    else:
        raise AssertionError("an inverted water mark was accepted")
