"""A demo-like day in a real store, written through the store's own functions."""

from __future__ import annotations

import io
import json
import random
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from scanner.observations import Radio, SensorState, SensorStatus
from scanner.store import alerts as alert_store
from scanner.store.allowlist import AllowlistEntry, replace_entries
from scanner.store.chain import append_audit
from scanner.store.db import Store
from scanner.store.health import record_status

DAY_START = 1_764_057_600.0  # 2025-11-25T08:00:00Z
HOUR = 3600.0


@dataclass(frozen=True)
class Day:
    store: Store
    since: float
    until: float
    macs: list[str]
    ble_addresses: list[str]
    alert_ids: list[str]


def radiotap_probe(mac: str, ts_seq: int, rssi: int, ssid: bytes = b"") -> bytes:
    """A radiotap (flags, channel, antenna signal) + 802.11 probe request, as a NIC gives it."""
    rt = struct.pack("<BBHI", 0, 0, 15, 0x2 | 0x8 | 0x20) + struct.pack(
        "<BxHHb", 0, 2437, 0x00A0, rssi
    )
    addr = bytes.fromhex(mac.replace(":", ""))
    hdr = b"\x40\x00\x00\x00" + b"\xff" * 6 + addr + b"\xff" * 6 + struct.pack("<H", ts_seq << 4)
    body = bytes([0, len(ssid)]) + ssid + bytes([1, 4, 0x02, 0x04, 0x0B, 0x16])
    return rt + hdr + body


def sigmf_pair(folder: Path, name: str, seed: int) -> Path:
    """A small cf32 SigMF recording (noise plus a burst), written as a recorder would."""
    rng = np.random.default_rng(seed)
    iq = (rng.normal(size=4096) + 1j * rng.normal(size=4096)).astype(np.complex64) * 0.01
    iq[1000:1600] += 0.5
    base = folder / name
    base.with_suffix(".sigmf-data").write_bytes(iq.tobytes())
    meta = {
        "global": {
            "core:datatype": "cf32_le",
            "core:sample_rate": 2_400_000.0,
            "core:version": "1.0.0",
        },
        "captures": [{"core:sample_start": 0, "core:frequency": 900_000_000.0}],
        "annotations": [],
    }
    base.with_suffix(".sigmf-meta").write_text(json.dumps(meta))
    return base


def sigmf_archive(folder: Path, name: str, seed: int) -> bytes:
    base = sigmf_pair(folder, name, seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for suffix in (".sigmf-meta", ".sigmf-data"):
            tar.add(base.with_suffix(suffix), arcname=f"{name}/{name}{suffix}")
    return buf.getvalue()


def _status(ts: float, sensor: str, radio: Radio, state: str, message: str) -> SensorStatus:
    return SensorStatus(
        ts=ts,
        mono=ts,
        sensor=sensor,
        radio=radio,
        state=SensorState(state),
        message=message,
        counters={"frames": 100},
        detail={},
    )


def populate_day(store: Store, folder: Path, seed: int = 7) -> Day:
    rng = random.Random(seed)
    t0 = DAY_START
    # Sensors: all up at 08:00, a BLE fault mid-morning, SDR degraded after lunch, Wi-Fi blip.
    for sensor, radio in (("wifi", Radio.WIFI), ("ble", Radio.BLE), ("sdr", Radio.SDR)):
        record_status(store, _status(t0 - 600, sensor, radio, "starting", "starting"))
        record_status(store, _status(t0 - 590, sensor, radio, "ok", ""))
    record_status(
        store,
        _status(
            t0 + 2.2 * HOUR, "ble", Radio.BLE, "fault", "adapter hci0 vanished; replug the dongle"
        ),
    )
    record_status(store, _status(t0 + 2.7 * HOUR, "ble", Radio.BLE, "ok", ""))
    record_status(
        store,
        _status(t0 + 6.0 * HOUR, "sdr", Radio.SDR, "degraded", "dropped samples: USB overruns"),
    )
    record_status(store, _status(t0 + 6.4 * HOUR, "sdr", Radio.SDR, "ok", ""))
    record_status(
        store,
        _status(
            t0 + 11.0 * HOUR,
            "wifi",
            Radio.WIFI,
            "stopped",
            "interface wlan1 taken by NetworkManager",
        ),
    )
    record_status(store, _status(t0 + 11.1 * HOUR, "wifi", Radio.WIFI, "ok", ""))
    replace_entries(
        store,
        [
            AllowlistEntry("mac", "02:aa:bb:cc:dd:01", "duty officer phone"),
            AllowlistEntry("ble_identity", "C4:11:22:33:44:55", "guard radio"),
        ],
        "supervisor1",
        t0 - 300,
    )
    with store.write() as conn:
        append_audit(conn, t0 + 5, "guard1", "session.login", {"from": "tablet"})
    macs: list[str] = []
    addresses: list[str] = []
    alert_ids: list[str] = []
    with store.write() as conn:
        # Background devices: access points and passers-by, sighted all day, never alerted.
        for n in range(30):
            mac = f"3c:22:fb:{n:02x}:10:{rng.randrange(256):02x}"
            for minute in range(0, 14 * 60, 20):
                ts = t0 + minute * 60 + rng.random() * 30
                conn.execute(
                    "INSERT INTO sightings (device_id, radio, sensor, first_ts, last_ts, count, "
                    "rssi_min, rssi_max, rssi_mean, identifier) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        f"bg-{n}",
                        "wifi",
                        "wifi",
                        ts,
                        ts + 40,
                        rng.randrange(1, 9),
                        -90,
                        -70,
                        -80,
                        mac,
                    ),
                )
    sigmf_dir = folder / "iq"
    sigmf_dir.mkdir(exist_ok=True)
    for n in range(14):
        raised = t0 + (0.4 + n * 0.95 + rng.random() * 0.3) * HOUR
        mac = f"da:{n:02x}:{rng.randrange(256):02x}:4e:{rng.randrange(256):02x}:17"
        ble = f"5A:{n:02X}:3B:{rng.randrange(256):02X}:C0:01"
        macs.append(mac)
        addresses.append(ble)
        alert_id = f"alert-{n + 1:03d}"
        alert_ids.append(alert_id)
        device = f"dev-{n}"
        sensors = ["wifi", "ble"] if n % 3 else ["wifi", "ble", "sdr"]
        with store.write() as conn:
            conn.execute(
                "INSERT INTO devices (id, kind, vendor, first_seen, last_seen, radios, "
                "identifiers, evidence, last_rssi, in_zone, ambient) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    device,
                    "handset",
                    "Apple" if n % 2 else "Samsung",
                    raised - 30,
                    raised + 300,
                    json.dumps(sensors),
                    json.dumps({"macs": [mac], "ble": [ble]}),
                    json.dumps(["probe requests with handset IEs"]),
                    -48.0,
                    0,
                    0,
                ),
            )
        alert_store.raise_alert(
            store,
            alert_store.AlertRecord(
                id=alert_id,
                kind="handset",
                state="open",
                title="Handset in zone",
                raised_ts=raised,
                updated_ts=raised,
                confidence=0.7,
                handsets=1,
                sensors=sensors[:1],
                reasons=[f"probe requests from {mac} at -45 dBm"],
                device_ids=[device],
            ),
        )
        alert_store.update_alert(
            store,
            alert_id,
            raised + 8,
            confidence=0.92,
            handsets=1 + n % 2,
            sensors=sensors,
            reasons=[f"probe requests from {mac} at -45 dBm", f"BLE {ble} at -50 dBm"],
            device_ids=[device],
            duration_s=8.0,
        )
        ack_at = raised + 20 + rng.random() * 90
        duration = 60 + rng.random() * 600
        # The store is written as things happen: in time order, as the chain's times say.
        steps: list[tuple[float, str]] = []
        if n != 5:
            steps.append((ack_at, "ack"))
        if n < 12:
            steps.append((raised + duration, "resolve"))
        for at, step in sorted(steps):
            if step == "ack":
                alert_store.acknowledge_alert(
                    store, alert_id, at, f"guard{1 + n % 2}", "checked at the gate"
                )
            else:
                alert_store.resolve_alert(store, alert_id, at, "left_zone", duration)
        with store.write() as conn:
            for minute in range(int(duration // 60) + 1):
                ts = raised - 20 + minute * 60
                for radio_name, ident in (("wifi", mac), ("ble", ble)):
                    conn.execute(
                        "INSERT INTO sightings (device_id, radio, sensor, first_ts, last_ts, "
                        "count, rssi_min, rssi_max, rssi_mean, identifier) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (
                            device,
                            radio_name,
                            radio_name,
                            ts,
                            ts + 55,
                            rng.randrange(3, 30),
                            -60,
                            -40,
                            -49.5,
                            ident,
                        ),
                    )
            for k in range(6):
                conn.execute(
                    "INSERT INTO evidence (alert_id, device_id, radio, ts, format, payload) "
                    "VALUES (?,?,?,?,?,?)",
                    (
                        alert_id,
                        device,
                        "wifi",
                        raised - 5 + k,
                        "wifi_frame",
                        radiotap_probe(mac, k, -45 - k, b"HomeNet" if k == 0 else b""),
                    ),
                )
                advert = {
                    "ts": raised - 4 + k,
                    "address": ble,
                    "address_type": "random",
                    "rssi": -50,
                    "tx_power": None,
                    "local_name": None,
                    "manufacturer_data": {"76": "1005031c5a0b2e"},
                    "service_data": {},
                    "service_uuids": [],
                    "adapter": "hci0",
                }
                conn.execute(
                    "INSERT INTO evidence (alert_id, device_id, radio, ts, format, payload) "
                    "VALUES (?,?,?,?,?,?)",
                    (
                        alert_id,
                        device,
                        "ble",
                        raised - 4 + k,
                        "ble_advert",
                        json.dumps(advert).encode(),
                    ),
                )
            if "sdr" in sensors:
                payload = (
                    sigmf_archive(sigmf_dir, f"burst{n}", n)
                    if n % 2
                    else str(sigmf_pair(sigmf_dir, f"burst{n}", n)).encode()
                )
                conn.execute(
                    "INSERT INTO evidence (alert_id, device_id, radio, ts, format, payload) "
                    "VALUES (?,?,?,?,?,?)",
                    (alert_id, device, "sdr", raised + 1, "sigmf", payload),
                )
    return Day(store, t0, t0 + 16 * HOUR, macs, addresses, alert_ids)


@pytest.fixture
def day(tmp_path: Path) -> Iterator[Day]:
    store = Store(tmp_path / "checkpoint.db")
    yield populate_day(store, tmp_path)
    store.close()
