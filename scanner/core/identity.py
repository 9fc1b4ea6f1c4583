"""Device identity: which transmitters are one device.

The trackers (``wifi_tracking``, ``ble_tracking``) group a phone's rotating addresses into one
device. The one-device-per-address identities here are what tests use to judge presence and
alerting on their own, without a tracker's grouping in the way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from scanner.core.ble_tracking import BleTracker, TrackerOptions
from scanner.core.wifi_tracking import WifiTracker, WifiTrackerOptions
from scanner.observations import BleAdvert, WifiFrame


class WifiIdentity(Protocol):
    def observe(self, frame: WifiFrame) -> str: ...

    def joined_by_model(self, mac: str) -> bool: ...


class BleIdentity(Protocol):
    def observe(self, advert: BleAdvert, cls: Any) -> str: ...


class AddressWifiIdentity:
    """Each transmitter MAC is its own device."""

    def observe(self, frame: WifiFrame) -> str:
        return frame.mac

    def joined_by_model(self, mac: str) -> bool:
        return False  # never joins two addresses


class AddressBleIdentity:
    """Each advertiser address is its own device."""

    def observe(self, advert: BleAdvert, cls: Any) -> str:
        return advert.address.lower()


def wifi_identity(section: Mapping[str, Any] | None = None, run_tag: str = "") -> WifiIdentity:
    """The Wi-Fi tracker with its ``wifi_*`` options.

    ``run_tag`` makes the tracker's counter-based ids unique across runs on one store.
    """
    options = WifiTrackerOptions.from_mapping(dict(section or {}))
    return WifiTracker(options, run_tag=run_tag)


def ble_identity(section: Mapping[str, Any] | None = None, run_tag: str = "") -> BleIdentity:
    """The BLE tracker with its ``ble_*`` options.

    ``run_tag`` makes the tracker's counter-based ids unique across runs on one store.
    """
    names = {f.name for f in dataclasses.fields(TrackerOptions)}
    values = {
        k.removeprefix("ble_"): v
        for k, v in (section or {}).items()
        if k.startswith("ble_") and k.removeprefix("ble_") in names
    }
    return BleTracker(TrackerOptions(**values), run_tag=run_tag)
