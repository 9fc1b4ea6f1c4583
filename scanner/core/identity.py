"""Stand-in device identity for a radio whose tracker is not installed: one device per address.

The real trackers (``wifi_tracking``, ``ble_tracking``) group a phone's rotating addresses into
one device. When one is missing the core still runs, counting each address as a device, which
over-counts handsets but never misses one.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from scanner.observations import BleAdvert, WifiFrame


class WifiIdentity(Protocol):
    def observe(self, frame: WifiFrame) -> str: ...


class BleIdentity(Protocol):
    def observe(self, advert: BleAdvert, cls: Any) -> str: ...


class AddressWifiIdentity:
    """Each transmitter MAC is its own device."""

    def observe(self, frame: WifiFrame) -> str:
        return frame.mac


class AddressBleIdentity:
    """Each advertiser address is its own device."""

    def observe(self, advert: BleAdvert, cls: Any) -> str:
        return advert.address.lower()


def wifi_identity(section: Mapping[str, Any] | None = None, run_tag: str = "") -> WifiIdentity:
    """The Wi-Fi tracker when installed (with its ``wifi_*`` options), else one per MAC.

    ``run_tag`` makes the tracker's counter-based ids unique across runs on one store.
    """
    try:
        module = importlib.import_module("scanner.core.wifi_tracking")
    except ImportError:
        return AddressWifiIdentity()
    options = module.WifiTrackerOptions.from_mapping(dict(section or {}))
    tracker: WifiIdentity = module.WifiTracker(options, run_tag=run_tag)
    return tracker


def ble_identity(section: Mapping[str, Any] | None = None, run_tag: str = "") -> BleIdentity:
    """The BLE tracker when installed (with its ``ble_*`` options), else one per address.

    ``run_tag`` makes the tracker's counter-based ids unique across runs on one store.
    """
    try:
        module = importlib.import_module("scanner.core.ble_tracking")
    except ImportError:
        return AddressBleIdentity()
    cls = module.TrackerOptions
    names = {f.name for f in dataclasses.fields(cls)}
    values = {
        k.removeprefix("ble_"): v
        for k, v in (section or {}).items()
        if k.startswith("ble_") and k.removeprefix("ble_") in names
    }
    tracker: BleIdentity = module.BleTracker(cls(**values), run_tag=run_tag)
    return tracker
