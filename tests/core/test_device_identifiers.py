"""A device's identifier and evidence tuples: grown one item at a time, capped, without repeats."""

from __future__ import annotations

from scanner.core.devices import MAX_IDENTIFIERS, Device


def _device() -> Device:
    device = Device("wifi:w1", "wifi", 0.0, 0.0, 0.0, 0.0)
    device.dirty = False
    return device


def test_an_identifier_is_added_once_and_marks_the_device_changed() -> None:
    device = _device()
    device.macs = device.with_identifier(device.macs, "4a:00:00:00:00:01")
    assert device.macs == ("4a:00:00:00:00:01",) and device.dirty
    device.dirty = False
    device.macs = device.with_identifier(device.macs, "4a:00:00:00:00:01")
    device.macs = device.with_identifier(device.macs, "")
    assert device.macs == ("4a:00:00:00:00:01",) and not device.dirty
    assert device.to_dict()["identifiers"]["macs"] == ["4a:00:00:00:00:01"]
    assert device.to_dict()["identifiers"]["ble"] == []


def test_identifiers_stop_at_the_cap() -> None:
    device = _device()
    for i in range(MAX_IDENTIFIERS + 5):
        device.macs = device.with_new_identifier(device.macs, f"4a:00:00:00:01:{i:02x}")
    assert len(device.macs) == MAX_IDENTIFIERS
    assert device.macs[-1] == f"4a:00:00:00:01:{MAX_IDENTIFIERS - 1:02x}"


def test_evidence_keeps_the_latest_eight_reasons() -> None:
    device = _device()
    for i in range(12):
        device.set_kind("handset", None, f"reason {i}")
    device.set_kind("handset", None, "reason 11")
    assert device.evidence == tuple(f"reason {i}" for i in range(4, 12))
    assert device.to_dict()["evidence"] == [f"reason {i}" for i in range(4, 12)]
