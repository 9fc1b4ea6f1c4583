"""Linking rotating addresses: a generated stream of several rotating devices, scored."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from scanner.core.ble_tracking import BleTracker
from scanner.observations import BleAdvert
from scanner.sources.ble.classify import classify

Payload = tuple[dict[int, bytes], dict[str, bytes]]
Maker = Callable[[random.Random, "SimDevice"], Payload]


@dataclass
class SimDevice:
    name: str
    rssi_dbm: float
    make: Maker  # (rng, device) -> manufacturer data, service data
    rotate_s: float | None  # None: identity address, never rotates
    interval_s: float
    present: tuple[float, float] = (0.0, 1e9)
    seq: int = 0
    sync: str | None = None  # devices of one group rotate at the same instants
    addresses: list[str] = field(default_factory=list)


def rpa(rng: random.Random) -> str:
    first = 0x40 | rng.randrange(0x40)  # top bits 01: resolvable private address
    return ":".join(f"{b:02X}" for b in [first] + [rng.randrange(256) for _ in range(5)])


def iphone(status: int, data_flags: int) -> Maker:
    def make(rng: random.Random, dev: SimDevice) -> Payload:
        if rng.random() < 0.05:
            dev.seq += 1  # a new Handoff activity
        action = rng.choice([0x03, 0x03, 0x07, 0x0B])
        auth = bytes(rng.randrange(256) for _ in range(3))
        ni = bytes([0x10, 0x05, (status << 4) | action, data_flags]) + auth
        ho = (
            bytes([0x0C, 0x0E, 0x00])
            + dev.seq.to_bytes(2, "big")
            + bytes(rng.randrange(256) for _ in range(11))
        )
        return {76: ho + ni}, {}

    return make


def watch() -> Maker:
    def make(rng: random.Random, dev: SimDevice) -> Payload:
        return {76: bytes([0x10, 0x05, 0x1A, 0x1C]) + rng.randbytes(3)}, {}

    return make


def airpods(model: int, colour: int) -> Maker:
    def make(rng: random.Random, dev: SimDevice) -> Payload:
        body = (
            bytes([0x01])
            + model.to_bytes(2, "big")
            + bytes([0x2B, 0x99, 0x8F, 0x01, 0x00, colour])
            + rng.randbytes(16)
        )
        return {76: bytes([0x07, len(body)]) + body}, {}

    return make


def fast_pair(model: bytes) -> Maker:
    def make(rng: random.Random, dev: SimDevice) -> Payload:
        return {}, {"0000fe2c-0000-1000-8000-00805f9b34fb": model}

    return make


def windows_laptop() -> Maker:
    def make(rng: random.Random, dev: SimDevice) -> Payload:
        return {6: bytes([0x01, 0x2F, 0x20, 0x02]) + rng.randbytes(20)}, {}

    return make


def ibeacon() -> Maker:
    def make(rng: random.Random, dev: SimDevice) -> Payload:
        return {76: bytes.fromhex("0215e2c56db5dffb48d2b060d0f5a71096e000010002c5")}, {}

    return make


def fleet() -> list[SimDevice]:
    return [
        SimDevice("iphone-a", -55, iphone(1, 0x1C), 90, 0.3),
        SimDevice("iphone-b", -58, iphone(1, 0x1C), 95, 0.35),  # same flags, close RSSI
        SimDevice("iphone-c", -70, iphone(3, 0x18), 80, 0.3),
        SimDevice("iphone-d", -75, iphone(1, 0x1E), 100, 0.4, present=(200, 900)),
        SimDevice("iphone-e", -62, iphone(1, 0x1C), 85, 0.3, present=(0, 600)),
        SimDevice("iphone-f", -80, iphone(7, 0x1C), 110, 0.5),
        SimDevice("watch-a", -57, watch(), 95, 0.5),
        SimDevice("airpods-a", -56, airpods(0x0E20, 0x00), 90, 0.4),
        SimDevice("airpods-b", -72, airpods(0x0E20, 0x01), 90, 0.4),
        SimDevice("airpods-c", -65, airpods(0x1420, 0x00), 120, 0.4),
        SimDevice("pixel-buds", -68, fast_pair(bytes.fromhex("2c3f9c")), 75, 0.5),
        SimDevice("laptop", -77, windows_laptop(), 100, 1.0),
        SimDevice("beacon", -85, ibeacon(), None, 1.0),
    ]


def hard_fleet() -> list[SimDevice]:
    """Pairs that rotate at the same instants with the same flags and close RSSI; phones that
    move (RSSI noise is larger, see stream)."""
    return [
        SimDevice("iphone-a", -55, iphone(1, 0x1C), 90, 0.3, seq=100, sync="p"),
        SimDevice("iphone-b", -57, iphone(1, 0x1C), 90, 0.3, seq=5000, sync="p"),
        SimDevice("watch-a", -60, watch(), 95, 0.5, sync="w"),
        SimDevice("watch-b", -63, watch(), 95, 0.5, sync="w"),
        SimDevice("iphone-c", -70, iphone(3, 0x18), 80, 0.3),
        SimDevice("airpods-a", -56, airpods(0x0E20, 0x00), 90, 0.4, sync="p"),
        SimDevice("airpods-b", -58, airpods(0x0E20, 0x00), 90, 0.4, sync="p"),
        SimDevice("laptop", -77, windows_laptop(), 100, 1.0),
    ]


def stream(
    seed: int, minutes: float, hard: bool = False
) -> tuple[list[tuple[BleAdvert, str]], dict[str, str]]:
    rng = random.Random(seed)
    devs = hard_fleet() if hard else fleet()
    noise_db = 5.0 if hard else 3.0
    events: list[tuple[float, SimDevice]] = []
    for d in devs:
        t = d.present[0] + rng.random() * d.interval_s
        while t < min(minutes * 60, d.present[1]):
            events.append((t, d))
            t += d.interval_s * rng.uniform(0.7, 1.3)
    events.sort(key=lambda e: e[0])
    owner: dict[str, str] = {}
    next_rotation: dict[str, float] = {}
    current: dict[str, str] = {}
    out: list[tuple[BleAdvert, str]] = []
    for t, d in events:
        if d.name not in current or (d.rotate_s and t >= next_rotation[d.name]):
            if d.rotate_s is None:
                addr = "C3:00:00:00:00:" + f"{len(current):02X}"
            else:
                addr = rpa(rng)
                if d.sync is not None:
                    # the group shares its rotation instants: multiples of its period
                    next_rotation[d.name] = (int(t // d.rotate_s) + 1) * d.rotate_s
                else:
                    next_rotation[d.name] = t + d.rotate_s * rng.uniform(0.8, 1.2)
            current[d.name] = addr
            owner[addr] = d.name
            d.addresses.append(addr)
        mfr, svc = d.make(rng, d)
        advert = BleAdvert(
            ts=1764000000.0 + t,
            mono=t,
            address=current[d.name],
            address_type="random",
            rssi_dbm=round(d.rssi_dbm + rng.gauss(0, noise_db)),
            manufacturer_data=mfr,
            service_data=svc,
        )
        out.append((advert, d.name))
    return out, owner


def score(seed: int, minutes: float = 20.0, hard: bool = False) -> dict[str, float]:
    adverts, owner = stream(seed, minutes, hard)
    tracker = BleTracker()
    for advert, _truth in adverts:
        tracker.observe(advert, classify(advert))
    truth_addresses: dict[str, list[str]] = {}
    for addr, name in owner.items():
        truth_addresses.setdefault(name, []).append(addr)
    rotations = sum(len(a) - 1 for a in truth_addresses.values())
    linked = sum(
        1
        for addrs in truth_addresses.values()
        for a, b in itertools.pairwise(addrs)
        if tracker.device_of(a) == tracker.device_of(b)
    )
    # false merges: address pairs of different devices attributed to one device id
    by_id: dict[str, set[str]] = {}
    for addr, name in owner.items():
        by_id.setdefault(tracker.device_of(addr) or addr, set()).add(name)
    impure = sum(1 for names in by_id.values() if len(names) > 1)
    return {
        "addresses": len(owner),
        "true_devices": len(truth_addresses),
        "tracked_devices": tracker.device_count(),
        "rotations": rotations,
        "rotations_linked": linked,
        "link_recall": linked / rotations,
        "devices_with_mixed_owners": impure,
    }


def test_rotating_devices_are_counted_once() -> None:
    results = [score(seed) for seed in (1, 2, 3)]
    for r in results:
        print(f"\nBLE linking: {r}")
    for r in results:
        assert r["addresses"] > 5 * r["true_devices"]  # the stream really rotates
        assert r["link_recall"] >= 0.9
        assert r["devices_with_mixed_owners"] <= 1
        assert abs(r["tracked_devices"] - r["true_devices"]) <= 3


def test_simultaneous_rotations_of_lookalike_devices() -> None:
    """The hard case: look-alike pairs rotating at the same instant. Device counts must hold;
    a pair may swap identities (reported), which the counts do not suffer from."""
    results = [score(seed, hard=True) for seed in (1, 2, 3)]
    for r in results:
        print(f"\nBLE linking (simultaneous rotations): {r}")
    for r in results:
        # Same-colour AirPods and watches 2-3 dB apart under 5 dB fading are told apart by RSSI
        # alone and swap now and then; phones never do (their Handoff counters differ).
        assert r["link_recall"] >= 0.7
        assert abs(r["tracked_devices"] - r["true_devices"]) <= 1


def test_concurrent_identical_devices_are_not_merged() -> None:
    """Two AirPods of one model and colour side by side: never one device."""
    tracker = BleTracker()
    pp = bytes.fromhex("0719010e202b998f01000400" + "00" * 15)
    ids = set()
    for i in range(200):
        t = i * 0.1
        for addr, rssi in (("4A:00:00:00:00:01", -60), ("4B:00:00:00:00:02", -61)):
            adv = BleAdvert(
                ts=t,
                mono=t,
                address=addr,
                address_type="random",
                rssi_dbm=rssi,
                manufacturer_data={76: pp},
            )
            ids.add(tracker.observe(adv, classify(adv)))
    assert tracker.device_count() == 2
    assert len(ids) == 2


def test_identity_addresses_are_never_linked() -> None:
    tracker = BleTracker()
    a = BleAdvert(ts=0, mono=0, address="00:1A:7D:DA:71:13", address_type="public", rssi_dbm=-50)
    b = BleAdvert(ts=1, mono=1, address="00:1A:7D:DA:71:14", address_type="public", rssi_dbm=-50)
    ida = tracker.observe(a, classify(a))
    for i in range(10):
        b2 = BleAdvert(ts=1 + i, mono=1 + i, address=b.address, address_type="public", rssi_dbm=-50)
        idb = tracker.observe(b2, classify(b2))
    assert ida != idb
    assert tracker.device_count() == 2


def test_payloadless_adverts_are_not_chained_by_timing() -> None:
    tracker = BleTracker()
    t = 0.0
    for n in range(20):  # twenty anonymous devices, each replacing the last
        addr = f"4{n % 10}:00:00:00:00:{n:02X}"
        for _ in range(15):
            adv = BleAdvert(ts=t, mono=t, address=addr, address_type="random", rssi_dbm=-60)
            tracker.observe(adv, classify(adv))
            t += 0.2
    assert tracker.device_count() == 20


def test_forgotten_devices_are_swept() -> None:
    tracker = BleTracker()
    pp = bytes.fromhex("0719010e202b998f01000400" + "00" * 15)
    first = BleAdvert(
        ts=0,
        mono=0,
        address="4A:00:00:00:00:01",
        address_type="random",
        rssi_dbm=-60,
        manufacturer_data={76: pp},
    )
    tracker.observe(first, classify(first))
    later = BleAdvert(
        ts=2000,
        mono=2000,
        address="4A:00:00:00:00:02",
        address_type="random",
        rssi_dbm=-60,
        manufacturer_data={76: pp},
    )
    tracker.observe(later, classify(later))
    assert tracker.device_count() == 1
    assert tracker.device_of("4A:00:00:00:00:01") is None
    assert tracker.forgotten == 1
