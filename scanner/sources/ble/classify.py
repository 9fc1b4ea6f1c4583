"""What sent a BLE advertisement: handset, wearable, audio, tag, computer, beacon or unknown.

``classify`` gathers evidence from every part of the advertisement (Apple Continuity messages,
Microsoft, Samsung and Google formats, service UUIDs, the local name, the company id) and keeps
the most confident finding. The result also carries hints the device tracker uses to follow a
phone across address rotation: a payload key that survives rotation when there is one, a
coarse signature, and the Handoff sequence number.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.observations import BleAdvert
from scanner.sources.ble import continuity as cont
from scanner.sources.ble import vendors
from scanner.sources.ble.address import address_kind
from scanner.sources.ble.company_ids import company_name, uuid16_of
from scanner.sources.ble.vendors import Finding

HANDSET = "handset"
WEARABLE = "wearable"
AUDIO = "audio"
TAG = "tag"
COMPUTER = "computer"
BEACON = "beacon"
UNKNOWN = "unknown"
KINDS = (HANDSET, WEARABLE, AUDIO, TAG, COMPUTER, BEACON, UNKNOWN)

_APPLE = "Apple"


@dataclass(frozen=True, slots=True)
class BleClass:
    """The classification of one advertisement, with the hints used to link addresses."""

    kind: str
    vendor: str | None
    reason: str
    confidence: float = 0.0
    model: str | None = None
    address_kind: str = "unknown"
    protocols: tuple[str, ...] = ()
    # Survives address rotation (product model + colour, advertised name, Fast Pair model id).
    payload_key: str | None = None
    # Coarse and shared by many devices of one type: links only together with timing and RSSI.
    signature: str = ""
    handoff_seq: int | None = None
    action_code: int | None = None
    malformed: bool = False


def _apple_findings(payload: bytes) -> tuple[list[Finding], int | None, int | None, bool, str]:
    """Findings from Apple manufacturer data, the Handoff sequence, action code, malformed flag,
    and a signature of the stable Nearby Info flags."""
    messages, malformed = cont.split_messages(payload)
    out: list[Finding] = []
    seq: int | None = None
    action: int | None = None
    signature = ""
    types = {m.type for m in messages}
    for msg in messages:
        t = msg.type
        proto = f"apple:{msg.name.lower().replace(' ', '_')}"
        if t == cont.NEARBY_INFO:
            info = cont.nearby_info(msg.data)
            if info is None:
                continue
            action = info.action_code
            signature = f"ni:{info.status_flags:x}:{(info.data_flags or 0):02x}"
            code = f"action code 0x{info.action_code:02x} ({info.action})"
            if info.action_code == cont.WATCH_ACTION_CODE:
                out.append(
                    Finding(
                        WEARABLE,
                        _APPLE,
                        f"Apple Nearby Info, Apple Watch {code}",
                        0.85,
                        "Apple Watch",
                        proto,
                    )
                )
            else:
                out.append(
                    Finding(
                        HANDSET, _APPLE, f"Apple Nearby Info, iPhone {code}", 0.8, "iPhone", proto
                    )
                )
        elif t == cont.HANDOFF:
            h = cont.handoff(msg.data)
            if h is not None:
                seq = h.sequence
            # Sent by iPhone, iPad and Mac alike; Nearby Info in the same advert decides.
            out.append(
                Finding(HANDSET, _APPLE, "Apple Handoff (iPhone, iPad or Mac)", 0.6, None, proto)
            )
        elif t == cont.PROXIMITY_PAIRING:
            pp = cont.proximity_pairing(msg.data)
            if pp is None:
                out.append(Finding(AUDIO, _APPLE, "Apple Proximity Pairing", 0.6, None, proto))
                continue
            model = pp.model or f"model 0x{pp.model_id:04x}"
            key = f"apple-pp:{pp.model_id:04x}:{pp.colour if pp.colour is not None else '-'}"
            out.append(
                Finding(
                    AUDIO,
                    _APPLE,
                    f"Apple Proximity Pairing, {model}",
                    0.95 if pp.model else 0.75,
                    pp.model,
                    proto,
                    key,
                )
            )
        elif t == cont.FIND_MY:
            fm = cont.find_my(msg.data)
            if fm is None:
                continue
            out.append(_find_my(fm, proto))
        elif t == cont.HEY_SIRI:
            cls = cont.hey_siri_class(msg.data)
            name = cont.SIRI_DEVICE_CLASSES.get(cls) if cls is not None else None
            kind = {
                "iPhone": HANDSET,
                "iPad": COMPUTER,
                "MacBook": COMPUTER,
                "Apple Watch": WEARABLE,
                "HomePod": UNKNOWN,
            }.get(name or "", HANDSET)
            out.append(
                Finding(
                    kind,
                    _APPLE,
                    f"Apple Hey Siri, {name or 'unknown device class'}",
                    0.95 if name else 0.5,
                    name,
                    proto,
                )
            )
        elif t == cont.MAGIC_SWITCH:
            out.append(
                Finding(
                    WEARABLE, _APPLE, "Apple Magic Switch (Apple Watch)", 0.9, "Apple Watch", proto
                )
            )
        elif t == cont.TETHERING_SOURCE:
            # Offers Instant Hotspot: only a device with a cellular modem sends this.
            out.append(
                Finding(
                    HANDSET,
                    _APPLE,
                    "Apple Tethering Source (cellular Instant Hotspot)",
                    0.9,
                    "iPhone",
                    proto,
                )
            )
        elif t == cont.TETHERING_TARGET:
            out.append(
                Finding(
                    COMPUTER,
                    _APPLE,
                    "Apple Tethering Target (Mac or iPad looking for a hotspot)",
                    0.5,
                    None,
                    proto,
                )
            )
        elif t == cont.NEARBY_ACTION:
            at = cont.nearby_action_type(msg.data)
            label = cont.NEARBY_ACTION_TYPES.get(at, "unknown action") if at is not None else "?"
            kind = HANDSET
            if at in (0x01, 0x06, 0x0B, 0x0D):  # Apple TV / speaker setup: sent by the set-top
                kind = UNKNOWN
            out.append(Finding(kind, _APPLE, f"Apple Nearby Action, {label}", 0.65, None, proto))
        elif t == cont.AIRDROP:
            out.append(
                Finding(HANDSET, _APPLE, "Apple AirDrop (share sheet open)", 0.6, None, proto)
            )
        elif t == cont.AIRPLAY_SOURCE:
            out.append(Finding(HANDSET, _APPLE, "Apple AirPlay Source", 0.6, None, proto))
        elif t == cont.AIRPLAY_TARGET:
            out.append(
                Finding(
                    UNKNOWN,
                    _APPLE,
                    "Apple AirPlay Target (Apple TV, HomePod or Mac)",
                    0.5,
                    None,
                    proto,
                )
            )
        elif t == cont.IBEACON:
            out.append(vendors.ibeacon(msg.data))
        elif t in (cont.HOMEKIT, cont.AIRPRINT):
            out.append(
                Finding(
                    UNKNOWN,
                    _APPLE,
                    f"Apple {msg.name} (home accessory or printer)",
                    0.5,
                    None,
                    proto,
                )
            )
    if not out:
        names = ", ".join(m.name for m in messages) or (
            "malformed TLVs" if malformed else "no messages"
        )
        out.append(Finding(UNKNOWN, _APPLE, f"Apple Continuity ({names})", 0.2, None, "apple"))
    # A Handoff with Nearby Info from a non-watch is the classic iPhone/Mac pair; nothing to
    # add. Handoff alone (no Nearby Info) is typical of a Mac: lower the handset confidence.
    if cont.HANDOFF in types and cont.NEARBY_INFO not in types:
        out = [
            f
            if f.protocol != "apple:handoff"
            else Finding(
                HANDSET,
                _APPLE,
                "Apple Handoff without Nearby Info (iPhone, iPad or Mac)",
                0.5,
                None,
                f.protocol,
            )
            for f in out
        ]
    return out, seq, action, malformed, signature


def _find_my(fm: cont.FindMy, proto: str) -> Finding:
    """Evidence from a Find My (offline finding) message: never a handset.

    The short "near owner" form is what an accessory sends while its owner's device is close
    (AirTags, AirPods, Find My network accessories: Heinrich et al. 2021, AirGuard 2022); an
    iPhone does not send it about itself, so these frames are not phones (one capture held
    nine such senders around ~8 iPhones in seven seconds). The long "separated" form from an
    owner device (status bits 4-5 = 0) is an iPhone, iPad or Mac that has lost its network or
    is powered off in power-reserve mode: an iPhone in use also sends Nearby Info, so it is
    counted from that; this frame comes from a static address that cannot be linked to the
    phone's rotating one and would count the same phone twice.
    """
    what = cont.FINDMY_DEVICE_TYPES[fm.device_type]
    form = "separated" if fm.long_form else "near owner"
    reason = f"Apple Find My ({form}), {what}, status 0x{fm.status:02x}"
    if fm.device_type == cont.FINDMY_AIRTAG:
        return Finding(TAG, _APPLE, reason, 0.95, "AirTag", proto)
    if fm.device_type == cont.FINDMY_ACCESSORY:
        return Finding(TAG, None, reason, 0.85, None, proto)
    if fm.device_type == cont.FINDMY_AIRPODS:
        return Finding(AUDIO, _APPLE, reason, 0.9, "AirPods", proto)
    if not fm.long_form:
        return Finding(
            UNKNOWN,
            _APPLE,
            f"{reason}: an accessory near its owner's iPhone, not a phone",
            0.7,
            None,
            proto,
        )
    return Finding(
        UNKNOWN,
        _APPLE,
        f"{reason}: an Apple device offline, not counted as a phone without Nearby Info",
        0.55,
        None,
        proto,
    )


def classify(advert: BleAdvert) -> BleClass:
    """Classify one advertisement; never raises, whatever the payload."""
    findings: list[Finding] = []
    seq: int | None = None
    action: int | None = None
    malformed = False
    signature = ""
    vendor_by_company: str | None = None
    for company, data in advert.manufacturer_data.items():
        if company == cont.APPLE_COMPANY_ID:
            f, seq, action, bad, signature = _apple_findings(data)
            findings.extend(f)
            malformed = malformed or bad
        elif company == vendors.MICROSOFT_COMPANY_ID:
            ms = vendors.microsoft(data)
            if ms is not None:
                findings.append(ms)
        elif company == vendors.SAMSUNG_COMPANY_ID:
            sm = vendors.samsung(data)
            if sm is not None:
                findings.append(sm)
        else:
            found = vendors.company(company)
            if found is not None:
                findings.append(found)
        if vendor_by_company is None:
            vendor_by_company = company_name(company) or f"company 0x{company:04x}"
    seen_uuids: set[int] = set()
    for uuid, data in advert.service_data.items():
        u16 = uuid16_of(uuid)
        if u16 is None:
            continue
        seen_uuids.add(u16)
        found = vendors.service_uuid16(u16, data)
        if found is not None:
            findings.append(found)
    for uuid in advert.service_uuids:
        u16 = uuid16_of(uuid)
        if u16 is None or u16 in seen_uuids:
            continue
        seen_uuids.add(u16)
        found = vendors.service_uuid16(u16, None)
        if found is not None:
            findings.append(found)
    if advert.local_name:
        found = vendors.local_name(advert.local_name)
        if found is not None:
            findings.append(found)

    addr_kind = address_kind(advert.address, advert.address_type)
    protocols = tuple(sorted({f.protocol for f in findings if f.protocol}))
    payload_key = next(
        (f.payload_key for f in sorted(findings, key=lambda f: -f.confidence) if f.payload_key),
        None,
    )
    if findings:
        best = max(findings, key=lambda f: f.confidence)
        vendor = best.vendor or vendor_by_company
        kind, reason, conf, model = best.kind, best.reason, best.confidence, best.model
        if model is None:
            model = next((f.model for f in findings if f.model and f.kind == kind), None)
    elif vendor_by_company is not None:
        vendor = vendor_by_company
        kind, reason, conf, model = UNKNOWN, f"manufacturer data of {vendor}", 0.1, None
    else:
        vendor = None
        kind, reason, conf, model = UNKNOWN, "no identifying payload", 0.0, None
    if not signature:
        signature = f"{vendor or '-'}:{model or '-'}:{','.join(protocols)}"
    return BleClass(
        kind=kind,
        vendor=vendor,
        reason=reason,
        confidence=conf,
        model=model,
        address_kind=addr_kind,
        protocols=protocols,
        payload_key=payload_key,
        signature=f"{kind}:{signature}",
        handoff_seq=seq,
        action_code=action,
        malformed=malformed,
    )
