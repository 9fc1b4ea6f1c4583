"""Scenario directories (FORMATS.md layout: wifi.pcap, ble.jsonl, allowlist.json, truth.json)
replayed by ``checkpoint replay --fast --alerts``: two guards' allowlisted phones of one model
in the booth, by their stable identities only, then a stranger with the same model and OS
(same fingerprint, randomised MACs, its own rotating BLE addresses) walks in. The stranger
alarms; the guards never do."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.cli.main import main
from scanner.sim.emit import WIFI_MODELS
from scanner.sources.ble.irk import make_rpa
from scanner.sources.wifi import build
from scanner.sources.wifi.recorder import PcapWriter
from scanner.sources.wifi.replay import read_frames

START = 1_764_000_000.0
SITE_AP = "00:1a:2b:3c:4d:5e"
INSIDE_DBM = -45


@dataclass(frozen=True, slots=True)
class Model:
    wifi: int  # index into the simulator's probe-request element sets
    company: int  # BLE manufacturer data: Bluetooth SIG company id
    payload: str


IPHONE = Model(0, 76, "1005031c5a0b2e")  # Apple Nearby Info
GALAXY = Model(1, 117, "42098102141503210108")  # Samsung


@dataclass(frozen=True, slots=True)
class Phone:
    name: str
    model: Model
    network_mac: str | None  # its MAC for the site's network; None: not on it (a stranger)
    probe_mac: str  # randomised
    irk: bytes
    t0: float
    t1: float
    allowlisted: bool

    def rpa(self, t: float) -> str:
        epoch = int(t // 900.0)  # a new address every 15 minutes
        prand = bytes([0x40 | (epoch * 5 + self.irk[0]) % 0x40, epoch % 256, self.irk[2]])
        return make_rpa(self.irk, prand).upper()


def _probe_body(model: Model) -> bytes:
    m = WIFI_MODELS[model.wifi]
    return build.probe_request_body(
        "",
        rates=m[0],
        ext_rates=m[1],
        ht_caps=bytes.fromhex(m[2]),
        ext_caps=bytes.fromhex(m[3]),
        vendor=[bytes.fromhex(v) for v in m[4]],
        channel=None,
    )


def _write(directory: Path, phones: list[Phone], duration: float) -> None:
    """The recordings of the phones in the booth: associated null frames every 10 s, a probe
    pair every 30 s once settled in, BLE adverts every 2 s."""
    frames: list[tuple[float, bytes]] = []
    ble: list[dict[str, Any]] = []
    for p in phones:
        body = _probe_body(p.model)
        t = p.t0
        while t < p.t1:
            head = build.radiotap(rssi_dbm=INSIDE_DBM, freq_mhz=2437)
            n = int(t - p.t0)
            if p.network_mac and n % 10 == 0:
                null = build.data_frame(p.network_mac, SITE_AP, n, subtype=4, to_ds=True)
                frames.append((t, head + null))
            if n % 30 == 0 and n >= 30:
                for k in range(2):
                    frames.append(
                        (t + 0.2 + k * 0.02, head + build.probe_request(p.probe_mac, n + k, body))
                    )
            ble.append(
                {
                    "ts": round(START + t + 0.5, 6),
                    "address": p.rpa(t),
                    "address_type": "random",
                    "rssi": INSIDE_DBM,
                    "tx_power": None,
                    "local_name": None,
                    "manufacturer_data": {str(p.model.company): p.model.payload},
                    "service_data": {},
                    "service_uuids": [],
                    "adapter": "hci0",
                }
            )
            t += 2.0
    with PcapWriter(directory / "wifi.pcap") as writer:
        for t, frame in sorted(frames, key=lambda f: f[0]):
            writer.write(START + t, frame)
    with (directory / "ble.jsonl").open("w", encoding="utf-8") as fh:
        for rec in sorted(ble, key=lambda r: r["ts"]):
            fh.write(json.dumps(rec) + "\n")
    # The model's probe fingerprint, as the scanner computes it, goes with a guard's Wi-Fi
    # entry (accounting only): the installer copies it from the guard's own alarm.
    fingerprint = {f.mac: f.fingerprint for f in read_frames(directory / "wifi.pcap")}
    entries: list[dict[str, str]] = []
    for p in phones:
        if not p.allowlisted or p.network_mac is None:
            continue
        entries.append(
            {
                "match": "mac",
                "value": p.network_mac,
                "label": p.name,
                "fingerprint": fingerprint[p.probe_mac],
            }
        )
        entries.append({"match": "ble_irk", "value": p.irk.hex(), "label": p.name})
    (directory / "allowlist.json").write_text(json.dumps({"entries": entries}), encoding="utf-8")
    truth = {
        "start": START,
        "duration_s": duration,
        "zone": {"name": "booth"},
        "devices": [
            {
                "id": p.name,
                "kind": "handset",
                "allowlisted": p.allowlisted,
                "radios": ["wifi", "ble"],
                "zone_intervals": [[p.t0, p.t1]],
            }
            for p in phones
        ],
    }
    (directory / "truth.json").write_text(json.dumps(truth), encoding="utf-8")


def _replay(directory: Path) -> list[dict[str, Any]]:
    out = directory / "alerts.ndjson"
    assert main(["replay", str(directory), "--fast", "--alerts", str(out)]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("model", [IPHONE, GALAXY], ids=["iphone", "galaxy"])
def test_stranger_with_the_guards_model_alarms_and_the_guards_do_not(
    tmp_path: Path, model: Model
) -> None:
    duration = 1500.0
    phones = [
        Phone(
            "guard one",
            model,
            "3a:11:00:00:00:01",
            "06:11:00:00:00:01",
            os.urandom(16),
            0.0,
            duration,
            True,
        ),
        Phone(
            "guard two",
            model,
            "3a:11:00:00:00:02",
            "06:11:00:00:00:02",
            os.urandom(16),
            1.0,
            duration,
            True,
        ),
        Phone("stranger", model, None, "06:11:00:00:00:03", os.urandom(16), 900.0, 1200.0, False),
    ]
    _write(tmp_path, phones, duration)
    # One model: the same probe fingerprint for all three.
    fps = {f.fingerprint for f in read_frames(tmp_path / "wifi.pcap") if f.subtype == "probe_req"}
    assert len(fps) == 1

    alarms = [ln for ln in _replay(tmp_path) if ln["alarm"]]
    assert alarms, "the stranger raised no alarm"
    # Every alarm is the stranger's visit (FORMATS.md: within [t0 - 5, t1 + 5]); none before.
    times = [ln["ts"] - START for ln in alarms]
    assert all(900.0 - 5 <= t <= 1200.0 + 5 for t in times), times
    # At its first probes at the latest (it probes from 30 s in; an iPhone's BLE is sooner).
    assert times[0] <= 900.0 + 35.0

    # Without the stranger, the guards alone in the booth raise nothing.
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    _write(quiet, phones[:2], duration)
    assert [ln for ln in _replay(quiet) if ln["alarm"]] == []
