"""What each simulated device transmits and what the sensor hears of it.

Per platform (published measurements of probe and advertising behaviour, rounded):

* iOS: Wi-Fi probe bursts on screen-on and every 15-35 s while the screen is on, every 60-180 s
  while off, from a new random MAC at each screen-on; BLE Nearby Info heard about 1.5 times a
  second, from an address that rotates every 12-18 minutes.
* Android: probe bursts every 15-35 s (screen on) or 40-120 s (off), MAC rotated at screen-on;
  most advertise Quick Share / Nearby presence about once a second, rotating every ~15 minutes.
* Cellular uplink: an idle phone with data on sends short bursts every 4-15 s (keep-alives,
  sync); a phone in a call or streaming transmits continuously, sampled here every 0.5 s.
* Infrastructure: access points (data frames as their own BSSID, mesh probes), a smart TV and a
  laptop (data frames to an AP, global MACs, BLE), a car head unit, beacons.

The sensor's Wi-Fi radio hops channels 1/6/11 with 250 ms dwells: a probe is heard only when
sent on the channel the sensor is on.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from scanner.sim.physics import Link, Site, distance, make_link, path_loss
from scanner.sim.population import Person

WIFI_CHANNELS = ((1, 2412), (6, 2437), (11, 2462))
HOP_DWELL_S = 0.25

# Per-model probe request elements: (rates, ext rates, HT caps hex, ext caps hex, vendor OUIs).
# Different models differ the way real ones do: capabilities and vendor elements.
WIFI_MODELS: tuple[tuple[bytes, bytes, str, str, tuple[str, ...]], ...] = (
    (
        b"\x02\x04\x0b\x16",
        b"\x0c\x12\x18\x24\x30\x48\x60\x6c",
        "2d0162ff000000000000000000000000000000000000000000",
        "0400000000000040",
        ("0017f20a000103040000",),
    ),
    (
        b"\x02\x04\x0b\x16",
        b"\x0c\x12\x18\x24\x30\x48\x60\x6c",
        "2d0163ff000000000000000000000000000000000000000000",
        "0400000801000040",
        ("0017f20a000103040000", "0050f208002b00"),
    ),
    (
        b"\x02\x04\x0b\x16\x0c\x12\x18\x24",
        b"\x30\x48\x60\x6c",
        "2d016fff000000000000000000000000000000000000000000",
        "0400080401000040",
        ("0017f20a000103040000",),
    ),
    (
        b"\x02\x04\x0b\x16\x0c\x12\x18\x24",
        b"\x30\x48\x60\x6c",
        "2d012fff000000000000000000000000000000000000000000",
        "0000080400000040",
        ("0050f208002b00",),
    ),
    (
        b"\x02\x04\x0b\x16",
        b"\x0c\x12\x18\x24\x30\x48\x60\x6c",
        "2d01efff000000000000000000000000000000000000000000",
        "05000a0201400040",
        ("506f9a16030103", "0050f208002b00"),
    ),
    (
        b"\x82\x84\x8b\x96",
        b"\x0c\x12\x18\x24\x30\x48\x60\x6c",
        "2d012dff000000000000000000000000000000000000000000",
        "0000080400000040",
        (),
    ),
    (
        b"\x82\x84\x8b\x96\x0c\x12\x18\x24",
        b"\x30\x48\x60\x6c",
        "2d016eff000000000000000000000000000000000000000000",
        "0400880101400040",
        ("8cfdf00101020100",),
    ),
    (
        b"\x02\x04\x0b\x16\x0c\x12\x18\x24",
        b"\x30\x48\x60\x6c",
        "2d01adff000000000000000000000000000000000000000000",
        "0000000000000040",
        ("00904c0408bf0c",),
    ),
    (
        b"\x82\x84\x8b\x96\x0c\x12\x18\x24",
        b"\x30\x48\x60\x6c",
        "2d01ecff000000000000000000000000000000000000000000",
        "0500080000000040",
        ("001018020000",),
    ),
    (
        b"\x82\x84\x8b\x96",
        b"\x0c\x12\x18\x24\x30\x48\x60\x6c",
        "2d010eff000000000000000000000000000000000000000000",
        "0000000000000000",
        (),
    ),
    # Infrastructure: a TV, a laptop, a mesh access point.
    (
        b"\x82\x84\x8b\x96\x0c\x12\x18\x24",
        b"\x30\x48\x60\x6c",
        "2d0120ff000000000000000000000000000000000000000000",
        "0000000000000000",
        ("0000f00102",),
    ),
    (
        b"\x82\x84\x8b\x96",
        b"\x0c\x12\x18\x24\x30\x48\x60\x6c",
        "2d01e7ff000000000000000000000000000000000000000000",
        "0400000000000040",
        ("0050f204104a0001",),
    ),
    (
        b"\x82\x84\x8b\x96\x0c\x12\x18\x24",
        b"\x30\x48\x60\x6c",
        "2d01acff000000000000000000000000000000000000000000",
        "0100000000000000",
        ("00037f0101",),
    ),
)

BANDS = (
    ("E-GSM-900 UL", 897.4e6, "gsm"),
    ("LTE B20 UL", 847.0e6, "lte"),
    ("LTE B8 UL", 902.5e6, "lte"),
    ("LTE B3 UL", 1747.5e6, "lte"),
)
# Loss at 1 m (including the body of whoever carries it), dB, by radio.
PL1M = {"wifi": 46.0, "ble": 46.0, "gsm": 38.0, "lte": 38.0, "lte_high": 44.0}
# The SDR's effective noise floor in a burst's bandwidth at the gain the scanner runs: strong
# nearby phones must not clip the 8-bit converter, so the gain is low.
SDR_FLOOR_DBM = -80.0
SDR_MAX_SNR_DB = 44.0
SDR_MIN_SNR_DB = 10.0


@dataclass(frozen=True, slots=True)
class WifiTx:
    t: float
    kind: str  # "probe" | "data"
    mac: str
    seq: int
    rssi: int
    freq: int
    model: int
    bssid: str | None = None
    ap: bool = False  # sent by an access point as its own BSSID
    levels: tuple[float | None, ...] = ()  # several sensors: each one's level (None: unheard)


@dataclass(frozen=True, slots=True)
class UplinkTx:
    t: float
    band: str
    centre_hz: float
    shape: str  # "gsm" | "lte"
    snr_db: float
    active: bool
    levels: tuple[float | None, ...] = ()  # several sensors: each one's SNR (None: unheard)


def random_mac(rng: random.Random) -> str:
    first = (rng.randrange(256) & 0xFC) | 0x02  # locally administered, unicast
    return ":".join(f"{b:02x}" for b in [first, *(rng.randrange(256) for _ in range(5))])


def global_mac(rng: random.Random, oui: str) -> str:
    return oui + ":" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))


def ble_random_address(rng: random.Random) -> str:
    first = (rng.randrange(64)) | 0x40  # resolvable private address: top bits 01
    return ":".join(f"{b:02X}" for b in [first, *(rng.randrange(256) for _ in range(5))])


def _sensor_channel(t: float) -> int:
    return WIFI_CHANNELS[int(t / HOP_DWELL_S) % len(WIFI_CHANNELS)][0]


def _screen_timeline(
    rng: random.Random, p: Person, t0: float, t1: float
) -> list[tuple[float, bool]]:
    """Screen on/off changes: (time, on)."""
    out = [(t0, p.screen_on)]
    on = p.screen_on
    t = t0
    while True:
        t += rng.expovariate(1 / (40.0 if on else 90.0))
        if t >= t1:
            return out
        on = not on
        out.append((t, on))


def _state_at(timeline: list[tuple[float, bool]], t: float) -> bool:
    state = timeline[0][1]
    for when, on in timeline:
        if when > t:
            break
        state = on
    return state


def wifi_emissions(rng: random.Random, site: Site, p: Person, bssids: list[str]) -> list[WifiTx]:
    """Every Wi-Fi frame the sensor hears from this device."""
    track = p.track
    out: list[WifiTx] = []
    if p.platform in ("ios", "android", "cell_only"):
        link = make_link(
            site, track, rng, 15.0 + rng.gauss(0, 2.0) - p.pocket_db, PL1M["wifi"], -92.0
        )
        screen = _screen_timeline(rng, p, track.start, track.end)
        mac = random_mac(rng)
        p.macs.append(mac)
        seq = rng.randrange(4096)
        t = track.start + rng.uniform(0, 30)
        changes = iter([w for w, on in screen[1:] if on])
        next_on = next(changes, math.inf)
        while t < track.end:
            if next_on <= t:  # screen turned on: new address, an immediate scan
                t = next_on
                next_on = next(changes, math.inf)
                mac = random_mac(rng)
                p.macs.append(mac)
                if p.platform == "ios":
                    seq = rng.randrange(4096)
            seq = _probe_burst(rng, link, out, t, mac, seq, p.model)
            on = _state_at(screen, t)
            if p.scanning:
                gap = rng.uniform(3.0, 6.0)
            elif on:
                gap = rng.uniform(15.0, 35.0)
            elif p.off_gap_s is not None:
                gap = rng.uniform(*p.off_gap_s)
            elif p.platform == "ios":
                gap = rng.uniform(60.0, 180.0)
            else:
                gap = rng.uniform(40.0, 120.0)
            t = min(t + gap, next_on)
        return out
    # Infrastructure and allowlisted equipment: associated stations and access points.
    oui = {
        "ap": "00:1a:1e",
        "tv": "f4:7b:09",
        "laptop": "3c:22:fb",
        "printer": "00:1e:0b",
        "tablet": "a4:c3:f0",
        "radio": "00:0e:8f",
        "desk": "dc:fb:48",  # an Intel card in a desk PC
        "desktv": "00:00:f0",  # a Samsung TV: Samsung Electronics, like its phones
    }.get(p.platform, "00:50:c2")
    mac = global_mac(rng, oui)
    p.macs.append(mac)
    tx = 20.0 if p.platform == "ap" else 15.0
    link = make_link(site, track, rng, tx + rng.gauss(0, 1.5), PL1M["wifi"], -92.0)
    is_ap = p.platform == "ap"
    if is_ap:
        bssids.append(mac)
    bssid = mac if is_ap else (bssids[0] if bssids else "00:1a:1e:00:00:01")
    freq = 2437
    seq = rng.randrange(4096)
    t = track.start + rng.uniform(0, 3)
    mean_gap = {
        "ap": 2.0,
        "tv": 4.0,
        "laptop": 3.0,
        "tablet": 2.0,
        "radio": 3.0,
        "printer": 6.0,
    }.get(p.platform, 5.0)
    next_probe = t + rng.uniform(5, 60)
    # Desk PCs and TVs scan for networks every minute or two, all day.
    probe_gap = (30.0, 120.0) if p.platform in ("desk", "desktv") else (60.0, 300.0)
    while t < track.end:
        level = link.level(t)
        if level is not None and _sensor_channel(t) == 6:
            out.append(
                WifiTx(t, "data", mac, seq, round(level), freq, p.model, bssid, is_ap, link.last)
            )
        seq = (seq + 1) % 4096
        if t >= next_probe:
            seq = _probe_burst(rng, link, out, t, mac, seq, p.model)
            next_probe = t + rng.uniform(*probe_gap)
        t += rng.expovariate(1 / mean_gap)
    return out


def _probe_burst(
    rng: random.Random, link: Link, out: list[WifiTx], t: float, mac: str, seq: int, model: int
) -> int:
    """One scan: two probes on each of channels 1, 6, 11, 40 ms per channel."""
    for k, (ch, freq) in enumerate(WIFI_CHANNELS):
        for j in range(2):
            tt = t + k * 0.04 + j * 0.008 + rng.uniform(0, 0.002)
            seq = (seq + 1) % 4096
            if _sensor_channel(tt) != ch:
                continue
            level = link.level(tt)
            if level is not None:
                out.append(
                    WifiTx(tt, "probe", mac, seq, round(level), freq, model, levels=link.last)
                )
    return seq


# Nearby Info data flags differ between iPhones (Wi-Fi on, AirPods connected, iOS version
# bits), so phones side by side do not all look alike; one phone keeps its flags.
NEARBY_DATA_FLAGS = (0x18, 0x1C, 0x98, 0x9C, 0x38, 0x1A)


def _apple_nearby(rng: random.Random, screen_on: bool, flags: int) -> dict[str, str]:
    action = 0x0B if screen_on else 0x03  # recent interaction / locked screen
    status = 0x1 if screen_on else 0x0
    data = flags if screen_on else flags & 0xF7
    body = bytes([(status << 4) | action, data]) + rng.randbytes(3)
    return {"76": (bytes([0x10, len(body)]) + body).hex()}


def ble_emissions(rng: random.Random, site: Site, p: Person) -> list[dict[str, Any]]:
    """Every advertisement the sensor hears from this device, as ``ble.jsonl`` objects."""
    track = p.track
    out: list[dict[str, Any]] = []
    tx = {
        "ios": 0.0,
        "android": -2.0,
        "watch": -6.0,
        "airpods": -8.0,
        "tv": 4.0,
        "car": 4.0,
        "beacon": -4.0,
        "laptop": 0.0,
        "tablet": 0.0,
        "radio": 0.0,
    }.get(p.platform, 0.0)
    link = make_link(site, track, rng, tx + rng.gauss(0, 2.0) - p.pocket_db, PL1M["ble"], -98.0)
    rate = {
        "ios": 1.5,
        "android": 1.0,
        "watch": 0.8,
        "airpods": 0.7,
        "tv": 0.5,
        "car": 0.3,
        "beacon": 1.0,
        "laptop": 0.5,
        "tablet": 0.8,
        "radio": 0.8,
    }.get(p.platform, 0.5)
    rotating = p.platform in ("ios", "android", "watch", "airpods", "laptop")
    address = ble_random_address(rng) if rotating else global_mac(rng, "E8:D0:3C").upper()
    if p.platform == "beacon":
        address = ble_random_address(rng)
    p.ble_addresses.append(address)
    address_type = "random" if rotating or p.platform == "beacon" else "public"
    rotate_at = track.start + rng.uniform(0, 15 * 60)
    screen = _screen_timeline(rng, p, track.start, track.end)
    t = track.start + rng.uniform(0, 2)
    fixed_payload = _fixed_payload(rng, p)
    flags = NEARBY_DATA_FLAGS[p.model % len(NEARBY_DATA_FLAGS)] if p.platform == "ios" else 0
    if p.platform == "ios" and rng.random() < 0.5:
        flags = rng.choice(NEARBY_DATA_FLAGS)
    while t < track.end:
        if rotating and t >= rotate_at:
            address = ble_random_address(rng)
            p.ble_addresses.append(address)
            rotate_at = t + rng.uniform(12 * 60, 18 * 60)
        level = link.level(t)
        if level is not None:
            rec: dict[str, Any] = {
                "ts": t,
                "address": address,
                "address_type": address_type,
                "rssi": round(level),
                "tx_power": None,
                "local_name": None,
                "manufacturer_data": {},
                "service_data": {},
                "service_uuids": [],
                "adapter": "hci0",
            }
            if p.platform == "ios":
                rec["manufacturer_data"] = _apple_nearby(rng, _state_at(screen, t), flags)
            else:
                rec.update(fixed_payload)
            if link.last:
                rec["levels"] = link.last  # several sensors: taken out before writing
            out.append(rec)
        t += rng.expovariate(rate)
    return out


def _fixed_payload(rng: random.Random, p: Person) -> dict[str, Any]:
    if p.platform == "android":
        return {
            "service_data": {
                "0000fef3-0000-1000-8000-00805f9b34fb": bytes.fromhex("fc128e").hex()
                + rng.randbytes(8).hex()
            }
        }
    if p.platform == "watch":
        body = bytes([0x0A, 0x1C]) + rng.randbytes(3)  # Nearby Info, Apple Watch action code
        return {"manufacturer_data": {"76": (bytes([0x10, len(body)]) + body).hex()}}
    if p.platform == "airpods":
        body = bytes([0x01, 0x0E, 0x20, 0x55, 0x89, 0x04]) + rng.randbytes(19)
        return {"manufacturer_data": {"76": (bytes([0x07, len(body)]) + body).hex()}}
    if p.platform == "tv":
        return {
            "local_name": "[TV] Samsung Q60 Series",
            "manufacturer_data": {"117": "4204010120" + rng.randbytes(6).hex()},
        }
    if p.platform == "car":
        return {"local_name": "CAR MULTIMEDIA"}
    if p.platform == "beacon":
        uuid = rng.randbytes(16).hex()
        return {"manufacturer_data": {"76": "0215" + uuid + "0001000ac5"}}
    if p.platform == "laptop":
        return {"manufacturer_data": {"6": "0109200" + rng.randbytes(12).hex()[:-1]}}
    if p.platform in ("tablet", "radio"):
        return {"local_name": f"GUARD-{p.platform.upper()}-{p.model}"}
    return {}


def uplink_emissions(rng: random.Random, site: Site, p: Person) -> list[UplinkTx]:
    """Cellular uplink bursts strong enough for the SDR's detector."""
    track = p.track
    out: list[UplinkTx] = []
    band, centre, shape = BANDS[rng.randrange(len(BANDS))]
    pl1m = PL1M["lte_high"] if centre > 1.5e9 else PL1M[shape]
    base_tx = rng.uniform(8.0, 23.0)  # power control: the network sets it, not the distance to us
    if p.power_control:
        # The network's closed loop: from -10 dBm (a phone near its cell) to 23 dBm (the
        # cell's edge, deep indoors), drifting as the phone moves and the cell's load changes.
        base_tx = rng.uniform(-10.0, 23.0)
    link = make_link(site, track, rng, base_tx - p.pocket_db, pl1m, SDR_FLOOR_DBM + SDR_MIN_SNR_DB)
    drift = 0.0
    next_step = track.start
    t = track.start + rng.uniform(0, 10)
    while t < track.end:
        if p.power_control and t >= next_step:
            # Power control commands of +-1 dB many times a second add up to a few dB in
            # ten seconds; held within the phone's range.
            drift = max(-10.0 - base_tx, min(23.0 - base_tx, drift + rng.gauss(0.0, 3.0)))
            next_step = t + 10.0
        level = link.level(t)
        if level is not None and p.power_control:
            level += drift
            if level < SDR_FLOOR_DBM + SDR_MIN_SNR_DB:
                level = None
        if level is not None:
            snr = min(SDR_MAX_SNR_DB, level - SDR_FLOOR_DBM)
            each = tuple(_snr_heard(v, drift if p.power_control else 0.0) for v in link.last)
            out.append(UplinkTx(t, band, centre, shape, round(snr, 1), p.active, each))
        if p.active:
            t += rng.uniform(0.4, 0.6)
        elif rng.random() < 0.5:
            t += rng.uniform(0.3, 1.0)  # a keep-alive is a few bursts close together
        else:
            t += rng.uniform(4.0, 15.0)
    return out


def _snr_heard(level: float | None, drift: float) -> float | None:
    """One sensor's SNR of a burst, or None below the detector's minimum."""
    if level is None or level + drift < SDR_FLOOR_DBM + SDR_MIN_SNR_DB:
        return None
    return round(min(SDR_MAX_SNR_DB, level + drift - SDR_FLOOR_DBM), 1)


def sdr_snr_at(site: Site, r: float, tx_dbm: float, pl1m: float) -> float:
    """Mean SNR of a transmitter at ``r`` metres (for calibration walks and docs)."""
    return tx_dbm - path_loss(site, r, pl1m) - SDR_FLOOR_DBM


__all__ = ["distance"]
