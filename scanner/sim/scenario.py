"""``checkpoint simulate``: write a scenario directory (FORMATS.md) with its ground truth.

    wifi.pcap          radiotap probe requests and data frames, link type 127
    ble.jsonl          one advertisement per line
    sdr/uplink.sigmf-* short IQ windows, one capture segment per burst heard
    truth.json         every device with its kind, radios and zone intervals
    allowlist.json     the site's allowlist (the authorised equipment's stable identifiers)

With several sensors (``sensors``: names and placements) each sensor's recordings go to
``sensors/NAME/`` as that sensor heard every transmission from where it stands
(``physics.receivers_for``), on its own clock (``clock_offsets_s``: the offset replay adds back,
so the recording reads that much early), and ``site.toml`` names each sensor, its placement and
its clock offset. The sensors' Wi-Fi radios hop channels in step.

Everything is drawn from one seeded generator per device, so a seed always gives the same files.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scanner.sim.emit import (
    WIFI_MODELS,
    UplinkTx,
    WifiTx,
    ble_emissions,
    uplink_emissions,
    wifi_emissions,
)
from scanner.sim.physics import receivers_for
from scanner.sim.population import PROFILES, Person, Profile, populate

_LOGGER = logging.getLogger(__name__)

BASE_START = 1_764_000_000.0
# SDR windows: sample rate and length of each captured window, and the receiver's noise level.
SDR_RATE = 1.024e6
# Long enough that a 1 ms LTE subframe is a quarter of it: the detector's noise estimate
# needs most of a window to be noise.
SDR_WINDOW_S = 0.004
SDR_NOISE_DBFS = -45.0
SDR_CAP_SNR_DB = 44.0  # above this a burst would clip the 8-bit converter at this gain


class ScenarioError(ValueError):
    """The simulation was asked for something it cannot do (unknown profile, bad length)."""


@dataclass(frozen=True, slots=True)
class Summary:
    """What was written."""

    out: Path
    profile: str
    duration_s: float
    wifi_frames: int
    ble_adverts: int
    sdr_windows: int
    visits: int
    counts: dict[str, int]


def simulate(
    seed: int,
    minutes: float,
    out: str | Path,
    profile: str = "mixed",
    sdr: bool = True,
    sensors: list[tuple[str, str]] | None = None,
    clock_offsets_s: dict[str, float] | None = None,
) -> Summary:
    """Draw and write one scenario; deterministic for a seed, profile and sensor list.

    ``sensors``: ``(name, placement)`` pairs for the several-sensor layout; none, the one-sensor
    layout."""
    prof = PROFILES.get(profile)
    if prof is None:
        raise ScenarioError(f"unknown profile {profile!r}; one of {', '.join(sorted(PROFILES))}")
    if not 0 < minutes <= 24 * 60:
        raise ScenarioError("--minutes must be between 0 and 1440")
    offsets = dict(clock_offsets_s or {})
    if sensors:
        _check_sensors(sensors, offsets)
        prof = replace(prof, site=replace(prof.site, receivers=receivers_for(prof.site, sensors)))
    elif offsets:
        raise ScenarioError("clock offsets need --sensors")
    duration = float(minutes) * 60.0
    start = BASE_START + (seed % 1000) * 7 * 3600.0
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"checkpoint-sim:{profile}:{seed}")
    people = populate(prof, rng, duration)
    wifi: list[WifiTx] = []
    ble: list[dict[str, Any]] = []
    uplink: list[UplinkTx] = []
    bssids: list[str] = []
    # Access points first, so stations have a network to talk to.
    for p in sorted(people, key=lambda p: p.platform != "ap"):
        # The calibration phone is one phone on every walk of a seed: its addresses and
        # payloads do not depend on which phase is simulated.
        stream = "calibration" if p.role == "calibration" else profile
        prng = random.Random(f"{seed}:{stream}:{p.id}")
        if p.wifi:
            wifi.extend(wifi_emissions(prng, prof.site, p, bssids))
        if p.ble:
            ble.extend(ble_emissions(prng, prof.site, p))
        if p.cell and sdr:
            uplink.extend(uplink_emissions(prng, prof.site, p))
    wifi = [w for w in wifi if 0.0 <= w.t < duration]
    ble = [b for b in ble if 0.0 <= b["ts"] < duration]
    uplink = [u for u in uplink if 0.0 <= u.t < duration - SDR_WINDOW_S]
    if sensors:
        windows = 0
        for i, (name, _placement) in enumerate(sensors):
            windows += _write_sensor(
                out_dir / "sensors" / name,
                i,
                wifi,
                ble,
                uplink,
                start - offsets.get(name, 0.0),
                seed,
            )
        _write_site(out_dir / "site.toml", sensors, offsets)
    else:
        _write_wifi(out_dir / "wifi.pcap", wifi, start)
        _write_ble(out_dir / "ble.jsonl", ble, start)
        sdr_dir = out_dir / "sdr"
        windows = 0
        if uplink:
            windows = _write_sdr(sdr_dir / "uplink", uplink, start, seed)
    truth = truth_of(people, prof, start, duration)
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    (out_dir / "allowlist.json").write_text(
        json.dumps({"entries": allowlist_of(people)}, indent=1) + "\n", encoding="utf-8"
    )
    visits = sum(
        len(d["zone_intervals"])
        for d in truth["devices"]
        if d["kind"] == "handset" and not d["allowlisted"]
    )
    counts = Counter(p.role for p in people)
    return Summary(out_dir, profile, duration, len(wifi), len(ble), windows, visits, dict(counts))


def parse_sensors(spec: str) -> list[tuple[str, str]]:
    """``inside,gate`` or ``hall:inside,pillar:gate``: names (the placement unless given) and
    placements, in order."""
    from scanner.config import PLACEMENTS

    out: list[tuple[str, str]] = []
    for item in (p.strip() for p in spec.split(",")):
        if not item:
            continue
        name, _, placement = item.rpartition(":")
        name = name or placement
        if placement not in PLACEMENTS:
            raise ScenarioError(
                f"sensor {item!r}: placement must be one of {', '.join(PLACEMENTS)}"
            )
        out.append((name, placement))
    if not out:
        raise ScenarioError("--sensors names no sensor")
    return out


def _check_sensors(sensors: list[tuple[str, str]], offsets: dict[str, float]) -> None:
    names = [n for n, _ in sensors]
    for name in names:
        # The name is a directory under sensors/ and a name in site.toml.
        if not name or name.startswith(".") or not all(c.isalnum() or c in "-_" for c in name):
            raise ScenarioError(f"sensor name {name!r}: letters, digits, - and _ only")
    if len(set(names)) != len(names):
        raise ScenarioError("a sensor is named twice")
    unknown = sorted(set(offsets) - set(names))
    if unknown:
        raise ScenarioError(f"clock offset for unknown sensor(s) {', '.join(unknown)}")


def _write_sensor(
    where: Path,
    index: int,
    wifi: list[WifiTx],
    ble: list[dict[str, Any]],
    uplink: list[UplinkTx],
    start: float,
    seed: int,
) -> int:
    """One sensor's recordings: what it heard of each transmission, at its level, its clock."""
    where.mkdir(parents=True, exist_ok=True)
    heard_wifi = [
        replace(w, rssi=round(lv), levels=()) for w in wifi if (lv := w.levels[index]) is not None
    ]
    heard_ble: list[dict[str, Any]] = []
    for b in ble:
        lv = b["levels"][index]
        if lv is not None:
            heard_ble.append({**{k: v for k, v in b.items() if k != "levels"}, "rssi": round(lv)})
    heard_uplink = [
        replace(u, snr_db=snr, levels=()) for u in uplink if (snr := u.levels[index]) is not None
    ]
    _write_wifi(where / "wifi.pcap", heard_wifi, start)
    _write_ble(where / "ble.jsonl", heard_ble, start)
    if not heard_uplink:
        return 0
    # Each sensor's receiver noise is its own.
    return _write_sdr(where / "sdr" / "uplink", heard_uplink, start, seed * 31 + index + 1)


def _write_site(path: Path, sensors: list[tuple[str, str]], offsets: dict[str, float]) -> None:
    lines = ["# The sensors of this site: where each stands, and its clock's known offset.\n"]
    for name, placement in sensors:
        lines.append(f'\n[[sensors]]\nname = "{name}"\nplacement = "{placement}"\n')
        if offsets.get(name):
            lines.append(f"clock_offset_s = {offsets[name]!r}\n")
    path.write_text("".join(lines), encoding="utf-8")


def truth_of(people: list[Person], prof: Profile, start: float, duration: float) -> dict[str, Any]:
    devices: list[dict[str, Any]] = []
    radius = prof.site.zone_radius_m
    for p in people:
        radios = [r for r, on in (("wifi", p.wifi), ("ble", p.ble), ("cell", p.cell)) if on]
        intervals: list[list[float]] = []
        if p.role in ("walk_in", "boundary", "passer", "calibration"):
            for t0, t1 in p.track.zone_intervals(radius):
                lo, hi = max(t0, 0.0), min(t1, duration)
                if hi > lo:
                    intervals.append([round(lo, 2), round(hi, 2)])
        elif p.track.zone_intervals(radius, step=duration):
            intervals.append([0.0, duration])
        devices.append(
            {
                "id": p.id,
                "kind": p.kind,
                "allowlisted": p.allowlisted,
                "radios": radios,
                "zone_intervals": intervals,
                "role": p.role,
                "platform": p.platform,
                # Not part of the scoring: for tracing an alert back to who caused it.
                "addresses": {"wifi": p.macs, "ble": p.ble_addresses},
            }
        )
    return {
        "start": start,
        "duration_s": duration,
        "zone": {"name": "north gate"},
        "profile": prof.name,
        "devices": devices,
    }


def allowlist_of(people: list[Person]) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    for p in people:
        if not p.allowlisted:
            continue
        label = f"issued {p.platform} {p.id}"
        entries.extend({"match": "mac", "value": m, "label": label} for m in p.macs)
        entries.extend(
            {"match": "ble_identity", "value": a, "label": label} for a in p.ble_addresses
        )
    return entries


def _write_wifi(path: Path, frames: list[WifiTx], start: float) -> None:
    from scanner.sources.wifi import build
    from scanner.sources.wifi.recorder import PcapWriter

    bodies = [
        build.probe_request_body(
            "",
            rates=m[0],
            ext_rates=m[1],
            ht_caps=bytes.fromhex(m[2]),
            ext_caps=bytes.fromhex(m[3]),
            vendor=[bytes.fromhex(v) for v in m[4]],
            channel=None,
        )
        for m in WIFI_MODELS
    ]
    frames.sort(key=lambda f: f.t)
    with PcapWriter(path) as writer:
        for f in frames:
            head = build.radiotap(rssi_dbm=max(-127, f.rssi), freq_mhz=f.freq)
            if f.kind == "probe":
                body = build.probe_request(f.mac, f.seq, bodies[f.model % len(bodies)])
            else:
                body = build.data_frame(
                    f.mac,
                    f.bssid or f.mac,
                    f.seq,
                    subtype=4 if f.ap else 8,
                    to_ds=not f.ap,
                    from_ds=f.ap,
                )
            writer.write(start + f.t, head + body)


def _write_ble(path: Path, adverts: list[dict[str, Any]], start: float) -> None:
    adverts.sort(key=lambda a: a["ts"])
    with path.open("w", encoding="utf-8") as fh:
        for a in adverts:
            rec = dict(a)
            rec["ts"] = round(start + a["ts"], 6)
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")


def _write_sdr(stem: Path, bursts: list[UplinkTx], start: float, seed: int) -> int:
    import numpy as np

    from scanner.sources.sdr import sigmf_io, synth

    stem.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(SDR_RATE * SDR_WINDOW_S)
    segments = []
    for b in sorted(bursts, key=lambda b: b.t):
        snr = min(b.snr_db, SDR_CAP_SNR_DB)
        lead = SDR_WINDOW_S / 2 - 0.0005  # the burst in the middle of its window
        if b.shape == "gsm":
            spec = synth.BurstSpec("gsm", lead, synth.GSM_BURST_S, 0.0, 0.0)
        else:
            spec = synth.BurstSpec("lte", lead, synth.LTE_SUBFRAME_S, 0.0, 0.0, n_prb=3)
        power = synth.power_dbfs_for(snr, SDR_NOISE_DBFS, spec.bandwidth_hz, SDR_RATE)
        spec = synth.BurstSpec(spec.kind, spec.start_s, spec.duration_s, 0.0, power, spec.n_prb)
        iq = synth.synth_cu8(rng, SDR_RATE, n, SDR_NOISE_DBFS, [spec])
        segments.append(sigmf_io.Segment(start + b.t - lead, b.centre_hz, SDR_RATE, iq))
    sigmf_io.write_scenario_segments(stem, segments)
    return len(segments)
