"""Stand-in device identity for a radio whose tracker is not installed: one device per address.

The real trackers (``wifi_tracking``, ``ble_tracking``) group a phone's rotating addresses into
one device. When one is missing the core still runs, counting each address as a device, which
over-counts handsets but never misses one.
"""

from __future__ import annotations

import importlib
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


def wifi_identity() -> WifiIdentity:
    """The Wi-Fi tracker when installed, else one device per MAC."""
    try:
        module = importlib.import_module("scanner.core.wifi_tracking")
    except ImportError:
        return AddressWifiIdentity()
    tracker: WifiIdentity = module.WifiTracker()
    return tracker


def ble_identity() -> BleIdentity:
    """The BLE tracker when installed, else one device per address."""
    try:
        module = importlib.import_module("scanner.core.ble_tracking")
    except ImportError:
        return AddressBleIdentity()
    tracker: BleIdentity = module.BleTracker()
    return tracker
