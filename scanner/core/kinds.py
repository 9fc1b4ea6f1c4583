"""What kind of device sent a frame or an advertisement, and the evidence for it.

BLE classification belongs to the BLE source (``scanner.sources.ble.classify``, pure Python:
no radio library is loaded with it). Wi-Fi stations are judged here from what the core sees of
them: who they talk to, whether they randomise their address, and for a global address, who
made it.

A device is a handset on positive evidence only. ``unknown`` is not handset-like: a station
that probes from a global address of an organisation nobody listed is far more often a desk
PC, a TV or a printer (on the Brno lab captures every station heard through the empty night
used a global address) than a phone, which has randomised its probe address since Android 10
and iOS 14.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scanner.observations import BleAdvert, WifiFrame
from scanner.sources.ble.classify import classify

_VENDORS = Path(__file__).with_name("data") / "wifi_vendors.json"


@functools.cache
def _vendor_table() -> dict[str, tuple[str, str]]:
    """OUI (six hex digits) -> (group, organisation): "phone", "mixed" or "computer"."""
    try:
        doc = json.loads(_VENDORS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    table: dict[str, tuple[str, str]] = {}
    for group in ("phone", "mixed", "computer"):
        for vendor, ouis in doc.get(group, {}).items():
            for oui in ouis:
                table[str(oui)] = (group, str(vendor))
    return table


def wifi_vendor(mac: str) -> tuple[str, str] | None:
    """("phone" | "mixed" | "computer", organisation) for a global MAC's OUI, or None."""
    oui = mac.lower().replace(":", "").replace("-", "")[:6]
    return _vendor_table().get(oui)


def wifi_kind(frame: WifiFrame) -> tuple[str, str]:
    """(kind, reason) for a Wi-Fi transmitter from one of its frames."""
    if frame.bssid is not None and frame.bssid == frame.mac:
        return "access_point", "transmits as its own BSSID"
    if not frame.random_mac:
        vendor = wifi_vendor(frame.mac)
        if vendor is not None and vendor[0] == "computer":
            return "computer", f"global address of {vendor[1]} (PCs, Wi-Fi modules, boards)"
        if vendor is not None and vendor[0] == "phone" and frame.subtype == "probe_req":
            # A phone with randomisation switched off (or an older one) probing.
            return "handset", f"probe requests from a {vendor[1]} phone's global address"
        if vendor is not None and vendor[0] == "mixed":
            # Samsung, Google, Huawei Technologies: TVs, streaming sticks and routers too.
            return "unknown", f"{frame.subtype} from a global address of {vendor[1]}"
    if frame.subtype == "probe_req":
        if frame.random_mac:
            # Phones randomise the address of their probe requests (iOS 14+, Android 10+).
            return "handset", "probe requests from a randomised address"
        return "unknown", "probe requests from a global address"
    return "unknown", f"{frame.subtype} frames"


# Classifications remembered per BLE classifier. A phone repeats one advertisement several times
# a second, the same payload from the same address until the address rotates (about every 15
# minutes): a crowd of a hundred new addresses a second stays remembered for its last ten
# seconds or so. Cleared whole when full: about 0.5 MB at most.
BLE_CLASSES_KEPT = 1024


class RememberingClassifier:
    """``classify`` of an advertisement, remembered for its repeats.

    The classification is a function of the advertisement's address, address type, name and
    payloads only (not of its time or level), so a repeat is given the same classification
    (a frozen record) without working it out again.
    """

    def __init__(
        self, classify_fn: Callable[[BleAdvert], Any] = classify, kept: int = BLE_CLASSES_KEPT
    ) -> None:
        self._classify = classify_fn
        self._kept = kept
        self._known: dict[tuple[Any, ...], Any] = {}

    def __call__(self, advert: BleAdvert) -> Any:
        try:
            key = (
                advert.address,
                advert.address_type,
                advert.local_name,
                tuple(advert.manufacturer_data.items()),
                tuple(advert.service_data.items()),
                advert.service_uuids,
            )
            known = self._known.get(key)
        except TypeError:  # a payload that is not hashable (not one a source makes)
            return self._classify(advert)
        if known is None:
            known = self._classify(advert)
            if len(self._known) >= self._kept:
                self._known.clear()
            self._known[key] = known
        return known

    def __len__(self) -> int:
        return len(self._known)


def ble_classifier() -> Callable[[BleAdvert], Any]:
    """The BLE source's classifier, remembering its recent classifications."""
    return RememberingClassifier()


def ble_kind(cls: Any) -> tuple[str, str | None, str]:
    """(kind, vendor, reason) from a BLE classification (any object with those attributes)."""
    if cls is None:
        return "unknown", None, ""
    kind = str(getattr(cls, "kind", "unknown") or "unknown")
    vendor = getattr(cls, "vendor", None)
    reason = str(getattr(cls, "reason", "") or "")
    return kind, (str(vendor) if vendor else None), reason
