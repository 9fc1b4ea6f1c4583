"""The detector bank: what it counts without running a detector is what the detector says."""

from __future__ import annotations

import itertools
from collections import Counter

from scanner.core.detectors import REGISTRY, DetectorBank, DetectorInput, build_registry
from scanner.core.devices import Device
from scanner.core.options import CoreOptions
from scanner.core.presence import Presence


def _devices() -> list[Device | None]:
    handset = Device("wifi:1", "wifi", 0.0, 0.0, 0.0, 0.0, kind="handset")
    named = Device("wifi:2", "wifi", 0.0, 0.0, 0.0, 0.0, kind="handset", allowlisted="guard")
    other = Device("ble:3", "ble", 0.0, 0.0, 0.0, 0.0, kind="tag")
    return [None, handset, named, other]


def _presences() -> list[Presence]:
    """Out of the zone or without a level, in every other respect as varied as can be."""
    out: list[Presence] = []
    for in_zone, level, window in [
        (False, -40.0, -40.0),
        (False, -95.0, -95.0),
        (False, None, None),
        (True, None, None),
        (True, None, -40.0),
    ]:
        pres = Presence(in_zone=in_zone, level=level, window_level=window, last_mono=10.0)
        for t in range(6):
            pres.samples.append((5.0 + t, -40.0))
        out.append(pres)
    return out


def test_each_in_zone_only_detector_says_outside_of_a_transmitter_outside() -> None:
    registry = [*REGISTRY, *build_registry(CoreOptions(min_samples=1, sdr_confirm_bursts=1))]
    assert all(det.in_zone_only for det in registry)  # (what the bank skips below)
    for det, pres, device, ambient, label in itertools.product(
        registry, _presences(), _devices(), (False, True), ("probe_req", "", "LTE B20 UL")
    ):
        for radio in det.inputs:
            inp = DetectorInput(radio, f"{radio}:k", pres, device, label, ambient)
            assert det.run(inp, det.thresholds) == ("outside", None), (det.name, inp)


def test_the_bank_counts_and_finds_as_running_each_detector_would() -> None:
    bank = DetectorBank(REGISTRY)
    expected: dict[str, Counter[str]] = {det.name: Counter() for det in REGISTRY}
    inside = Presence(in_zone=True, level=-40.0, window_level=-41.0, last_mono=10.0)
    for t in range(10):
        inside.samples.append((9.0 + t / 10, -40.0))
    cases = [(pres, radio) for pres in _presences() for radio in ("wifi", "ble", "sdr")]
    cases += [(inside, "wifi"), (inside, "ble")]  # (uplink energy inside: its own tests)
    for (pres, radio), device in itertools.product(cases, _devices()):
        inp = DetectorInput(radio, f"{radio}:k", pres, device, "probe_req", False)
        findings = []
        for det in REGISTRY:
            if radio in det.inputs:
                outcome, finding = det.run(inp, det.thresholds)
                expected[det.name][outcome] += 1
                if finding is not None:
                    assert not finding.alone
                    findings.append(finding)
        assert bank.judge(radio, f"{radio}:k", pres, device, "probe_req", False) == findings
    assert bank.snapshot() == {name: dict(c) for name, c in expected.items()}
    assert expected["wifi_station_in_zone"]["outside"] > 0
    assert expected["wifi_station_in_zone"]["finding"] > 0
    assert expected["uplink_energy_in_zone"]["outside"] > 0
