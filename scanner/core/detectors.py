"""The detectors: each is a declared descriptor plus one function, listed in one registry.

A detector looks at one device's state on one radio after tracking and presence have run, and
says whether it is evidence of a handset in the zone (a ``Finding``). Each descriptor names its
inputs and its thresholds (with their units in their names); every run ends in a counted
outcome, so ``counters`` shows why devices did or did not become evidence.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from scanner.core.devices import Device
from scanner.core.options import CoreOptions
from scanner.core.presence import Presence
from scanner.makers import maker


@dataclass(frozen=True, slots=True)
class Finding:
    """Evidence that a transmitter is in the zone, as fusion consumes it."""

    detector: str
    radio: str
    key: str  # the device id (Wi-Fi, BLE) or the band key (SDR)
    level: float
    reason: str  # what a guard reads: "Wi-Fi probe -48 dBm"
    weight: float  # how much this alone says "a handset is here", 0..1
    identifies: bool  # True when it names a device (Wi-Fi, BLE); SDR energy does not
    # Uplink energy only: whether it may raise an alert with no Wi-Fi or BLE handset to name
    # (see ``uplink_energy_in_zone`` and ``DetectorBank``).
    alone: bool = False


@dataclass(frozen=True, slots=True)
class DetectorInput:
    """What a detector sees: the device, its presence on this radio, and the context."""

    radio: str
    key: str
    presence: Presence
    device: Device | None = None
    label: str = ""  # what the latest observation was ("probe", "Apple Nearby Info", "B20")
    ambient: bool = False  # the ambient baseline says this is the device's usual level


# Made for every record judged inside the zone: without ``__init__``'s lookups (``makers``).
_make_input = maker(DetectorInput)

Outcome = tuple[str, Finding | None]
DetectorFn = Callable[[DetectorInput, Mapping[str, float]], Outcome]


@dataclass(frozen=True, slots=True)
class Detector:
    """A declared detector: its name, the radios it reads, its thresholds and its function."""

    name: str
    inputs: tuple[str, ...]
    thresholds: Mapping[str, float]
    run: DetectorFn
    description: str = ""
    # The outcome is "outside", with no finding, whenever the transmitter is not in the zone or
    # has no level yet: the bank counts that without running the detector (under a crowd
    # nearly every record is of a transmitter outside).
    in_zone_only: bool = True


def _common(inp: DetectorInput) -> str | None:
    """The outcomes shared by every device detector, or None when the device may alert."""
    if not inp.presence.in_zone or inp.presence.level is None:
        return "outside"
    device = inp.device
    if device is not None and device.allowlisted is not None:
        return "allowlisted"
    if inp.ambient:
        return "ambient"
    return None


def wifi_station_in_zone(inp: DetectorInput, th: Mapping[str, float]) -> Outcome:
    """A Wi-Fi station (not an access point) transmitting from inside the zone."""
    skip = _common(inp)
    if skip is not None:
        return skip, None
    device = inp.device
    if device is not None and device.kind in ("access_point", "beacon"):
        return "infrastructure", None
    if device is not None and not device.is_handset:
        # A desk PC, a TV, a printer in the zone, or a station nothing says is a phone.
        return "not_handset", None
    level = inp.presence.level or 0.0
    margin = level - th["enter_rssi_dbm"]
    weight = min(0.95, th["base_weight"] + 0.02 * max(margin, 0.0))
    what = "Wi-Fi probe" if inp.label == "probe_req" else f"Wi-Fi {inp.label or 'frame'}"
    return "finding", Finding(
        "wifi_station_in_zone", "wifi", inp.key, level, f"{what} {level:.0f} dBm", weight, True
    )


def ble_handset_in_zone(inp: DetectorInput, th: Mapping[str, float]) -> Outcome:
    """A BLE device classified as a handset advertising from inside the zone."""
    skip = _common(inp)
    if skip is not None:
        return skip, None
    device = inp.device
    if device is None or not device.is_handset:
        return "not_handset", None
    level = inp.presence.level or 0.0
    margin = level - th["enter_rssi_dbm"]
    weight = min(0.95, th["base_weight"] + 0.02 * max(margin, 0.0))
    what = inp.label or (f"{device.vendor} BLE" if device.vendor else "BLE handset")
    return "finding", Finding(
        "ble_handset_in_zone", "ble", inp.key, level, f"{what} {level:.0f} dBm", weight, True
    )


def uplink_energy_in_zone(inp: DetectorInput, th: Mapping[str, float]) -> Outcome:
    """Uplink bursts strong enough, often enough, to come from a transmitter in the zone.

    Whether the energy may alert on its own (``Finding.alone``) is decided from physics, not
    from a higher SNR bar: the network's power control spreads a phone's uplink over 15 dB or
    more whatever its distance to the sensor, so a phone inside under power control and one
    just outside at full power overlap in level, and no single bar separates them. What does:

    * sustained: at least ``confirm_bursts`` bursts in the window (an idle phone's sparse
      keep-alives: in the zone for ``idle_hold_s``), and the window's median (not a peak) at
      the zone's enter level; a passer-by's uplink rises and falls within seconds;
    * the other radios (``DetectorBank``): a handset heard on Wi-Fi or BLE just outside the
      zone at that moment explains the energy; the uplink is then that phone, not another.
    """
    pres = inp.presence
    if not pres.in_zone or pres.level is None:
        return "outside", None
    # The level reported is the median over the whole window: a phone on a call outside at
    # full power peaks now and then, one inside does not dip.
    level = pres.window_level or pres.level
    band = inp.label or "uplink"
    weight = min(0.9, th["base_weight"] + 0.01 * max(level - th["enter_snr_db"], 0.0))
    recent = sum(1 for t, _ in pres.samples if pres.last_mono - t <= th["window_s"])
    # An idle phone's keep-alives are too sparse for the burst count; holding the zone's level
    # through several of them is as sustained (``sdr_idle_hold_s``).
    entered = pres.entered_mono
    held = entered is not None and pres.last_mono - entered >= th["idle_hold_s"]
    sustained = level >= th["enter_snr_db"] and (recent >= th["confirm_bursts"] or held)
    return "finding", Finding(
        "uplink_energy_in_zone",
        "sdr",
        inp.key,
        level,
        f"uplink burst {band} +{level:.0f} dB SNR",
        weight,
        False,
        alone=sustained,
    )


def _thresholds(options: CoreOptions, radio: str, unit: str, weight: float) -> dict[str, float]:
    zone = options.zone[radio]
    window = options.sdr_window_s if radio == "sdr" else options.window_s
    return {
        f"enter_{unit}": zone.enter_dbm,
        f"exit_{unit}": zone.exit_dbm,
        "window_s": window,
        "absent_s": options.absent_s,
        "base_weight": weight,
        "nearby_margin_db": options.nearby_margin_db,
    }


def build_registry(options: CoreOptions) -> tuple[Detector, ...]:
    """The registry with thresholds from the options (calibration adjusts the zone per sensor)."""
    return (
        Detector(
            "wifi_station_in_zone",
            ("wifi",),
            _thresholds(options, "wifi", "rssi_dbm", 0.7),
            wifi_station_in_zone,
            "probe requests or data frames from a station in the zone",
        ),
        Detector(
            "ble_handset_in_zone",
            ("ble",),
            _thresholds(options, "ble", "rssi_dbm", 0.75),
            ble_handset_in_zone,
            "advertisements of a handset-class BLE device in the zone",
        ),
        Detector(
            "uplink_energy_in_zone",
            ("sdr",),
            {
                **_thresholds(options, "sdr", "snr_db", 0.6),
                "confirm_bursts": float(options.sdr_confirm_bursts),
                "idle_hold_s": options.sdr_idle_hold_s,
            },
            uplink_energy_in_zone,
            "cellular uplink bursts at in-zone strength",
        ),
    )


# Handsets heard just outside kept for explaining uplink energy: a crowd at the door within
# one uplink window (6 s of Wi-Fi probes and BLE adverts, one note each) is a few hundred.
NEARBY_KEPT = 512


def full_power_headroom_db(band: str) -> float:
    """How much louder than an LTE or NR phone (power class 3, 23 dBm) a phone can send on this
    band at full power: a GSM phone sends up to 33 dBm at 850/900 MHz and 30 dBm at 1800/1900
    MHz (3GPP TS 45.005 classes 4 and 1), and a band label naming GSM may be carrying it."""
    if "GSM-850" in band or "GSM-900" in band:
        return 10.0
    if "DCS-1800" in band or "PCS-1900" in band:
        return 7.0
    return 0.0


REGISTRY: tuple[Detector, ...] = build_registry(CoreOptions())
"""The detectors with default thresholds (see ``build_registry`` for configured ones)."""


class DetectorBank:
    """Runs the registry's detectors for a radio and counts every outcome per detector.

    It also keeps what the other radios say about uplink energy: when a handset was last heard
    on Wi-Fi or BLE just outside the zone (within ``nearby_margin_db`` below the exit level;
    the configured levels, not a sensor's calibration), and how strong an uplink that phone
    can send from where it stands. Uplink energy heard meanwhile, no stronger than that, is
    most likely that phone and does not alert on its own; stronger energy is not that phone.
    """

    def __init__(self, registry: tuple[Detector, ...]) -> None:
        self.nearby_mono = float("-inf")
        # (when, the strongest uplink SNR that phone can send) of handsets heard just outside,
        # oldest first; kept for the uplink window.
        self._nearby: deque[tuple[float, float]] = deque(maxlen=NEARBY_KEPT)
        self.registry = registry
        self.counters: dict[str, Counter[str]] = {det.name: Counter() for det in registry}
        self._by_radio: dict[str, list[Detector]] = {}
        for det in registry:
            for radio in det.inputs:
                self._by_radio.setdefault(radio, []).append(det)
        # The thresholds a radio's nearby handsets and uplink energy are judged on (its first
        # detector's), looked up once rather than on every record.
        self._radio_thresholds = {
            radio: dets[0].thresholds for radio, dets in self._by_radio.items()
        }

    def judge(
        self,
        radio: str,
        key: str,
        presence: Presence,
        device: Device | None = None,
        label: str = "",
        ambient: bool = False,
    ) -> list[Finding]:
        """Every detector of ``radio`` on this transmitter's state; the ``DetectorInput`` they
        read is made only if one of them runs."""
        findings: list[Finding] = []
        counters = self.counters
        outside = not presence.in_zone or presence.level is None
        inp: DetectorInput | None = None
        for det in self._by_radio.get(radio, ()):
            if outside and det.in_zone_only:
                counters[det.name]["outside"] += 1
                continue
            if inp is None:
                inp = _make_input(radio, key, presence, device, label, ambient)
            outcome, finding = det.run(inp, det.thresholds)
            if finding is not None and finding.alone and self._explained(inp, finding):
                outcome = "explained_by_nearby_handset"
                finding = replace(finding, alone=False)
            counters[det.name][outcome] += 1
            if finding is not None:
                findings.append(finding)
        if radio != "sdr":
            self._note_nearby(radio, presence, device)
        return findings

    def _note_nearby(self, radio: str, pres: Presence, device: Device | None) -> None:
        if pres.in_zone or pres.level is None or device is None or not device.is_handset:
            return
        if device.allowlisted is not None:
            return
        th = self._radio_thresholds.get(radio)
        if th is None:
            return
        floor = th["exit_rssi_dbm"] - th["nearby_margin_db"]
        if pres.level < floor:
            return
        self.nearby_mono = max(self.nearby_mono, pres.last_mono)
        sdr = self._radio_thresholds.get("sdr")
        if sdr is None:
            return
        # ``nearby_margin_db`` below the exit level is where that phone's uplink at full power
        # (23 dBm) reaches the zone's enter level, the two bands' shadowing included; each dB
        # it reads louder on Wi-Fi or BLE is a dB more it can send on the uplink (one path).
        nearby = self._nearby
        while nearby and pres.last_mono - nearby[0][0] > sdr["window_s"]:
            nearby.popleft()
        nearby.append((pres.last_mono, sdr["enter_snr_db"] + (pres.level - floor)))

    def _explained(self, inp: DetectorInput, finding: Finding) -> bool:
        """Whether a handset heard just outside, just now, can have sent this uplink energy:
        one that could not send it that loud even at full power is not its source."""
        th = self._radio_thresholds.get("sdr")
        window = th["window_s"] if th is not None else 0.0
        now = inp.presence.last_mono
        headroom = full_power_headroom_db(inp.label)
        return any(
            now - when <= window and finding.level <= cap + headroom for when, cap in self._nearby
        )

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {name: dict(c) for name, c in self.counters.items()}
