"""What kind of device sent a frame or an advertisement, and the evidence for it.

BLE classification belongs to the BLE source (``scanner.sources.ble.classify``, pure Python:
no radio library is loaded with it). Wi-Fi stations are judged here
from what the core sees of them: who they talk to and whether they randomise their address.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scanner.observations import BleAdvert, WifiFrame
from scanner.sources.ble.classify import classify


def wifi_kind(frame: WifiFrame) -> tuple[str, str]:
    """(kind, reason) for a Wi-Fi transmitter from one of its frames."""
    if frame.bssid is not None and frame.bssid == frame.mac:
        return "access_point", "transmits as its own BSSID"
    if frame.subtype == "probe_req":
        if frame.random_mac:
            # Phones randomise the address of their probe requests (iOS 14+, Android 10+).
            return "handset", "probe requests from a randomised address"
        return "unknown", "probe requests from a global address"
    return "unknown", f"{frame.subtype} frames"


def ble_classifier() -> Callable[[BleAdvert], Any]:
    """The BLE source's classifier."""
    return classify


def ble_kind(cls: Any) -> tuple[str, str | None, str]:
    """(kind, vendor, reason) from a BLE classification (any object with those attributes)."""
    if cls is None:
        return "unknown", None, ""
    kind = str(getattr(cls, "kind", "unknown") or "unknown")
    vendor = getattr(cls, "vendor", None)
    reason = str(getattr(cls, "reason", "") or "")
    return kind, (str(vendor) if vendor else None), reason
