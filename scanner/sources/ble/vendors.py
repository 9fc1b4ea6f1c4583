"""Non-Apple advertisement formats: Microsoft CDP / Swift Pair, Samsung EasySetup, Google Fast
Pair and Nearby, Exposure Notification, Eddystone (incl. Find My Device network trackers),
iBeacon and tracker service UUIDs.

Each decoder returns a ``Finding`` (kind, vendor, reason, model, confidence) or None; the
classifier picks the most confident finding of an advertisement. Sources for each format are
cited beside its constants.
"""

from __future__ import annotations

from dataclasses import dataclass

MICROSOFT_COMPANY_ID = 0x0006
SAMSUNG_COMPANY_ID = 0x0075
GOOGLE_COMPANY_ID = 0x00E0

UUID_FAST_PAIR = 0xFE2C  # Google Fast Pair Service (SIG member service)
UUID_GOOGLE_NEARBY = 0xFEF3  # Google LLC, used by Android's Nearby / Quick Share presence
UUID_EXPOSURE_NOTIFICATION = 0xFD6F  # Google/Apple Exposure Notification specification v1.2
UUID_EDDYSTONE = 0xFEAA  # Google Eddystone (github.com/google/eddystone protocol-specification)
UUID_SAMSUNG_SMARTTAG = 0xFD5A  # Samsung Electronics: SmartTag offline finding
UUID_TILE = (0xFEED, 0xFEEC, 0xFD84)  # Tile, Inc. (SIG member UUIDs)
UUID_APPLE_FINDMY_UT = 0xFD44  # Apple: Find My network accessory unwanted-tracking service
UUID_DULT = 0xFCB2  # IETF DULT (Detecting Unwanted Location Trackers) accessory service

# Microsoft CDP beacon (MS-CDP 2.2.2.2.1 "Bluetooth Advertising Beacon"): scenario type 1, then
# Version_and_Device_Type whose low 5 bits are the device type.
CDP_SCENARIO = 0x01
SWIFT_PAIR_SCENARIO = 0x03  # Microsoft Swift Pair: "Microsoft Beacon ID 0x03" (Windows docs)
CDP_DEVICE_TYPES: dict[int, tuple[str, str]] = {
    1: ("Xbox One", "unknown"),
    6: ("Apple iPhone", "handset"),
    7: ("Apple iPad", "computer"),
    8: ("Android device", "handset"),
    9: ("Windows 10 desktop", "computer"),
    11: ("Windows 10 phone", "handset"),
    12: ("Linux device", "computer"),
    13: ("Windows IoT", "unknown"),
    14: ("Surface Hub", "computer"),
    15: ("Windows laptop", "computer"),
    16: ("Windows tablet", "computer"),
}

# Samsung EasySetup pop-ups (prefixes published by the BLE-spam research projects, e.g. the
# Flipper "easysetup" protocol notes, which copied them from real Galaxy Buds and Watches).
SAMSUNG_BUDS_PREFIX = bytes.fromhex("42098102141503210109")
SAMSUNG_WATCH_PREFIX = bytes.fromhex("010002000101ff000043")
SAMSUNG_TYPE_DEVICE = 0x42

# Quick Share / Nearby Share "someone is sharing" advert: Fast Pair UUID with this service-data
# prefix (published by the NearDrop project's protocol notes).
QUICK_SHARE_PREFIX = bytes.fromhex("fc128e")

# Eddystone frame types (Eddystone protocol specification); 0x40/0x41 are Google's Find My
# Device network (FMDN) frames sent by trackers (FMDN accessory specification).
EDDYSTONE_FRAMES: dict[int, str] = {
    0x00: "Eddystone-UID",
    0x10: "Eddystone-URL",
    0x20: "Eddystone-TLM",
    0x30: "Eddystone-EID",
}
FMDN_FRAMES = (0x40, 0x41)


# Companies that make no phones, so their manufacturer data alone says what kind of device
# sent it (company ids: Bluetooth SIG Assigned Numbers, "Company Identifiers"). A company that
# also sells phones (Sony, Samsung, Google, Xiaomi, Huawei) is not listed: its id says nothing
# about the kind. Confidence 0.5: above a local name, below any decoded protocol.
COMPANY_KINDS: dict[int, tuple[str, str, str]] = {
    0x0087: ("wearable", "Garmin", "watches, bike computers, fitness devices"),
    0x0157: ("wearable", "Huami", "Mi Band, Amazfit and Zepp bands and watches"),
    0x058E: ("wearable", "Meta", "Quest headsets and smart glasses"),
    0x0067: ("audio", "Jabra", "GN Audio: Jabra headsets and earbuds"),
    0x0089: ("audio", "GN Hearing", "ReSound hearing aids"),
    0x009E: ("audio", "Bose", "headphones and speakers"),
}

# SIG member service UUIDs (Assigned Numbers, "Member UUIDs") of the same kind of companies:
# products advertise them to be found by their vendor's app.
MEMBER_UUID_KINDS: dict[int, tuple[str, str, str]] = {
    0xFE1F: ("wearable", "Garmin", "Garmin device service"),
    0xFEE0: ("wearable", "Huami", "Huami (Mi Band) service"),
    0xFEB8: ("wearable", "Meta", "Meta (Facebook) service"),
    0xFEFF: ("audio", "Jabra", "GN Netcom (Jabra) service"),
    0xFEBE: ("audio", "Bose", "Bose service"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of evidence about what sent an advertisement."""

    kind: str
    vendor: str | None
    reason: str
    confidence: float
    model: str | None = None
    protocol: str = ""
    payload_key: str | None = None  # stable across address rotation when not None


def company(company_id: int) -> Finding | None:
    """Evidence from a manufacturer-data company id alone (see ``COMPANY_KINDS``)."""
    known = COMPANY_KINDS.get(company_id)
    if known is None:
        return None
    kind, vendor, what = known
    return Finding(
        kind, vendor, f"{vendor} manufacturer data ({what})", 0.5, None, f"company:{company_id}"
    )


def microsoft(data: bytes) -> Finding | None:
    """Microsoft manufacturer data: CDP beacons say the device type; Swift Pair is an accessory."""
    if len(data) < 2:
        return None
    scenario = data[0]
    if scenario == CDP_SCENARIO:
        dtype = data[1] & 0x1F
        name, kind = CDP_DEVICE_TYPES.get(dtype, (f"device type {dtype}", "unknown"))
        conf = 0.85 if kind != "unknown" else 0.3
        return Finding(
            kind,
            "Microsoft",
            f"Microsoft CDP beacon, {name}",
            conf,
            name,
            "microsoft:cdp",  # the device type is shared by every PC of the kind: no key
        )
    if scenario == SWIFT_PAIR_SCENARIO:
        return Finding(
            "unknown",
            "Microsoft",
            "Microsoft Swift Pair accessory",
            0.4,
            None,
            "microsoft:swift_pair",
        )
    return None


def samsung(data: bytes) -> Finding | None:
    """Samsung manufacturer data: EasySetup pop-ups name Galaxy Buds and Watches."""
    if data.startswith(SAMSUNG_BUDS_PREFIX):
        model = data[len(SAMSUNG_BUDS_PREFIX) : len(SAMSUNG_BUDS_PREFIX) + 3].hex()
        return Finding(
            "audio",
            "Samsung",
            f"Samsung EasySetup, Galaxy Buds model {model}",
            0.9,
            "Galaxy Buds",
            "samsung:easysetup",
            f"samsung-buds:{model}",
        )
    if data.startswith(SAMSUNG_WATCH_PREFIX):
        return Finding(
            "wearable",
            "Samsung",
            "Samsung EasySetup, Galaxy Watch",
            0.9,
            "Galaxy Watch",
            "samsung:easysetup",
        )
    if not data:
        return None
    if data[0] == SAMSUNG_TYPE_DEVICE and len(data) >= 2:
        # Type 0x42 is the family of the EasySetup pop-ups above; other subtypes (0x04 in a
        # real capture, from a Galaxy device carrying its own address in the payload) name
        # no product class, and Samsung sells phones, tablets, laptops and TVs alike: not
        # evidence of a phone. A Galaxy phone is a handset on its name or on Quick Share.
        return Finding(
            "unknown",
            "Samsung",
            f"Samsung Galaxy device advert (type 0x42, subtype 0x{data[1]:02x}): "
            "names no device class",
            0.3,
            None,
            "samsung:0x42",
        )
    return Finding(
        "unknown",
        "Samsung",
        f"Samsung manufacturer data, type 0x{data[0]:02x}",
        0.2,
        None,
        "samsung",
    )


def fast_pair(data: bytes) -> Finding:
    """Google Fast Pair service data: a 3-byte model id while discoverable, else account data."""
    if data.startswith(QUICK_SHARE_PREFIX):
        return Finding(
            "handset",
            "Google",
            "Android Quick Share (Nearby Share) presence",
            0.85,
            "Android phone",
            "google:quick_share",
        )
    if len(data) == 3:
        model = data.hex()
        return Finding(
            "audio",
            "Google",
            f"Google Fast Pair, model id 0x{model.upper()}",
            0.8,
            None,
            "google:fast_pair",
            f"fast-pair:{model}",
        )
    return Finding(
        "audio",
        "Google",
        "Google Fast Pair, paired accessory (account key filter)",
        0.7,
        None,
        "google:fast_pair",
    )


def eddystone(data: bytes) -> Finding:
    """Eddystone service data: beacon frames, or Find My Device network tracker frames."""
    frame = data[0] if data else None
    if frame in FMDN_FRAMES:
        mode = "unwanted-tracking mode" if frame == 0x41 else "normal mode"
        return Finding(
            "tag",
            "Google",
            f"Google Find My Device network tracker ({mode})",
            0.9,
            None,
            "google:fmdn",
        )
    name = EDDYSTONE_FRAMES.get(frame, "Eddystone") if frame is not None else "Eddystone"
    return Finding("beacon", None, f"{name} beacon", 0.85, None, "eddystone")


def ibeacon(data: bytes) -> Finding:
    """An iBeacon (Apple type 0x02, 21 bytes: UUID, major, minor, measured power)."""
    if len(data) >= 20:
        uuid = data[:16].hex()
        major = (data[16] << 8) | data[17]
        minor = (data[18] << 8) | data[19]
        return Finding(
            "beacon",
            "Apple",
            f"iBeacon {uuid[:8]}… major {major} minor {minor}",
            0.85,
            None,
            "apple:ibeacon",
            f"ibeacon:{uuid}:{major}:{minor}",
        )
    return Finding("beacon", "Apple", "iBeacon", 0.7, None, "apple:ibeacon")


def service_uuid16(uuid16: int, data: bytes | None) -> Finding | None:
    """Evidence from a 16-bit service UUID (with its service data when present)."""
    payload = data or b""
    if uuid16 == UUID_FAST_PAIR:
        return (
            fast_pair(payload)
            if data is not None
            else Finding(
                "audio", "Google", "Google Fast Pair service", 0.5, None, "google:fast_pair"
            )
        )
    if uuid16 == UUID_EXPOSURE_NOTIFICATION:
        return Finding(
            "handset",
            None,
            "Exposure Notification (contact tracing app)",
            0.85,
            None,
            "exposure_notification",
        )
    if uuid16 == UUID_EDDYSTONE:
        return eddystone(payload)
    if uuid16 == UUID_GOOGLE_NEARBY:
        return Finding(
            "handset",
            "Google",
            "Google Nearby presence (Android)",
            0.6,
            "Android phone",
            "google:nearby",
        )
    if uuid16 == UUID_SAMSUNG_SMARTTAG:
        return Finding("tag", "Samsung", "Samsung SmartTag", 0.9, "SmartTag", "samsung:smarttag")
    if uuid16 in UUID_TILE:
        return Finding("tag", "Tile", "Tile tracker", 0.9, "Tile", "tile")
    member = MEMBER_UUID_KINDS.get(uuid16)
    if member is not None:
        kind, vendor, what = member
        return Finding(kind, vendor, what, 0.5, None, f"uuid:{uuid16:04x}")
    if uuid16 in (UUID_APPLE_FINDMY_UT, UUID_DULT):
        return Finding(
            "tag", None, "location tracker (unwanted-tracking service)", 0.8, None, "dult"
        )
    return None


# Local names some products advertise; weak evidence, used only when nothing better is known.
NAME_HINTS: tuple[tuple[str, str, str | None], ...] = (
    ("iphone", "handset", "Apple"),
    ("galaxy buds", "audio", "Samsung"),
    ("airpods", "audio", "Apple"),
    ("galaxy watch", "wearable", "Samsung"),
    ("apple watch", "wearable", "Apple"),
    ("ipad", "computer", "Apple"),
    ("macbook", "computer", "Apple"),
    ("pixel buds", "audio", "Google"),
    ("pixel watch", "wearable", "Google"),
    ("pixel", "handset", "Google"),
    ("galaxy tab", "computer", "Samsung"),
    ("galaxy book", "computer", "Samsung"),
    ("galaxy", "handset", "Samsung"),
    ("jabra", "audio", "Jabra"),
    ("fitbit", "wearable", "Fitbit"),
    ("charge ", "wearable", None),
    ("band", "wearable", None),
    ("watch", "wearable", None),
    ("buds", "audio", None),
    ("jbl", "audio", "Harman"),
    ("bose", "audio", "Bose"),
    ("wh-", "audio", "Sony"),
    ("wf-", "audio", "Sony"),
    ("tile", "tag", "Tile"),
    ("desktop-", "computer", None),
    ("laptop-", "computer", None),
)


def local_name(name: str) -> Finding | None:
    """Weak evidence from the advertised local name."""
    low = name.lower()
    for needle, kind, vendor in NAME_HINTS:
        if needle in low:
            return Finding(kind, vendor, f"local name {name!r}", 0.45, None, "name", f"name:{name}")
    return Finding("unknown", None, f"local name {name!r}", 0.1, None, "name", f"name:{name}")
