"""Importers for BLE captures made by other tools, so their recordings load as they are.

* btsnoop HCI logs (Android's ``btsnoop_hci.log``, ``btmon -w``): datalink 1001 (H1) and
  1002 (H4); LE Advertising Report and LE Extended Advertising Report events.
* pcap and pcapng with link types 272 ``NORDIC_BLE`` (the nRF Sniffer for Bluetooth LE), 256
  ``BLUETOOTH_LE_LL_WITH_PHDR`` and 251 ``BLUETOOTH_LE_LL`` (sniffers: Ubertooth, SDR
  sniffers), and 201/187 HCI H4 (``tshark -i bluetooth0``, hcidump).

Sniffer link layers (251, 256, 272) hand over packets whose CRC failed; those are dropped and
counted (``crc_bad``, ``crc_failed``, see ``link_layer``), never read as adverts. HCI reports
(btsnoop, 187, 201) carry no CRC: a controller reports only packets whose CRC it verified.

Formats: btsnoop per RFC 1761 with Bluetooth datalinks (as Wireshark documents it), the pcap
link-type registry, the LE link layer and HCI event layouts of the Core specification (Vol 4
Part E 7.7.65.2 and 7.7.65.13, Vol 6 Part B 2.3). All parsing is hand-written with explicit
bounds checks; a record that does not fit is counted (``malformed_*``) and skipped, and a file
cut mid-record ends at its last whole record (``truncated``).
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from scanner.errors import RecordingError
from scanner.observations import BleAdvert
from scanner.sources.ble import link_layer as ll
from scanner.sources.ble.constants import rssi_dbm_or_none
from scanner.sources.ble.link_layer import ADV_ACCESS_ADDRESS

_LOGGER = logging.getLogger(__name__)

BTSNOOP_MAGIC = b"btsnoop\x00"
# btsnoop timestamps count microseconds from "0 AD"; this is 1970-01-01 on that scale as
# Wireshark (and so every tool checked against it) reads Android and btmon logs.
BTSNOOP_EPOCH_DELTA_US = 0x00DCDDB30F2F8000
BTSNOOP_H1 = 1001
BTSNOOP_H4 = 1002

LINKTYPE_BLUETOOTH_HCI_H4 = 187
LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR = 201
LINKTYPE_BLUETOOTH_LE_LL = 251
LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR = 256
LINKTYPE_NORDIC_BLE = 272
SUPPORTED_LINKTYPES = (
    LINKTYPE_BLUETOOTH_HCI_H4,
    LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR,
    LINKTYPE_BLUETOOTH_LE_LL,
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    LINKTYPE_NORDIC_BLE,
)

_BTSNOOP_HDR = struct.Struct(">8sII")
_BTSNOOP_REC = struct.Struct(">IIIIq")
_PCAP_REC = {"<": struct.Struct("<IIII"), ">": struct.Struct(">IIII")}
_PCAP_HDR = {"<": struct.Struct("<HHiIII"), ">": struct.Struct(">HHiIII")}

H4_EVENT = 0x04
HCI_EV_LE_META = 0x3E
LE_ADVERTISING_REPORT = 0x02
LE_EXTENDED_ADVERTISING_REPORT = 0x0D

# AD types (Assigned Numbers, "Common Data Types").
AD_UUID16 = (0x02, 0x03)
AD_UUID32 = (0x04, 0x05)
AD_UUID128 = (0x06, 0x07)
AD_NAME = (0x08, 0x09)
AD_TX_POWER = 0x0A
AD_SERVICE_DATA16 = 0x16
AD_SERVICE_DATA32 = 0x20
AD_SERVICE_DATA128 = 0x21
AD_MANUFACTURER = 0xFF

_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def sniff(head: bytes) -> str | None:
    """The capture format named by a file's first bytes, or None (then it is ``ble.jsonl``)."""
    if head.startswith(BTSNOOP_MAGIC):
        return "btsnoop"
    if head[:4] in (
        b"\xd4\xc3\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\x3c\x4d",
    ):
        return "pcap"
    if head[:4] == b"\x0a\x0d\x0d\x0a":
        return "pcapng"
    return None


def read_capture(path: Path, counters: Counter[str]) -> Iterator[BleAdvert]:
    """Adverts from a btsnoop, pcap or pcapng file; ``RecordingError`` if unreadable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from exc
    fmt = sniff(data[:16])
    if fmt == "btsnoop":
        return _counted(read_btsnoop(data, counters), counters)
    if fmt == "pcap":
        return _counted(read_pcap(data, counters), counters)
    if fmt == "pcapng":
        return _counted(read_pcapng(data, counters), counters)
    raise RecordingError(f"{path}: not a btsnoop, pcap or pcapng file")


def _counted(adverts: Iterator[BleAdvert], counters: Counter[str]) -> Iterator[BleAdvert]:
    for advert in adverts:
        counters["records"] += 1
        yield advert


# -- AD structures ---------------------------------------------------------------------------
def _uuid16(v: int) -> str:
    return f"0000{v:04x}{_BASE_SUFFIX}"


def _uuid32(v: int) -> str:
    return f"{v:08x}{_BASE_SUFFIX}"


def _uuid128(le: bytes) -> str:
    h = le[::-1].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _format_address(le: bytes) -> str:
    return ":".join(f"{b:02X}" for b in reversed(le))


def parse_ad(data: bytes, counters: Counter[str]) -> dict[str, object] | None:
    """AD structures -> the fields of a ``BleAdvert``; None when the structure is broken."""
    mfr: dict[int, bytes] = {}
    svc: dict[str, bytes] = {}
    uuids: list[str] = []
    name: str | None = None
    tx: int | None = None
    i = 0
    n = len(data)
    while i < n:
        length = data[i]
        if length == 0:  # early terminator: the rest is padding (Core Vol 3 Part C 11)
            break
        end = i + 1 + length
        if end > n:
            counters["malformed_ad"] += 1
            return None
        ad_type = data[i + 1]
        value = data[i + 2 : end]
        # Most common first: manufacturer data, then service data and UUID lists.
        if ad_type == AD_MANUFACTURER and len(value) >= 2:
            mfr[value[0] | (value[1] << 8)] = bytes(value[2:])
        elif ad_type == AD_SERVICE_DATA16 and len(value) >= 2:
            svc[_uuid16(value[0] | (value[1] << 8))] = bytes(value[2:])
        elif ad_type in AD_UUID16:
            uuids.extend(
                _uuid16(value[j] | (value[j + 1] << 8)) for j in range(0, len(value) - 1, 2)
            )
        elif ad_type in AD_NAME:
            name = value.decode("utf-8", errors="replace")
        elif ad_type == AD_TX_POWER and len(value) == 1:
            tx = value[0] - 256 if value[0] > 127 else value[0]
        elif ad_type in AD_UUID128:
            uuids.extend(_uuid128(value[j : j + 16]) for j in range(0, len(value) - 15, 16))
        elif ad_type in AD_UUID32:
            uuids.extend(
                _uuid32(int.from_bytes(value[j : j + 4], "little"))
                for j in range(0, len(value) - 3, 4)
            )
        elif ad_type == AD_SERVICE_DATA32 and len(value) >= 4:
            svc[_uuid32(int.from_bytes(value[:4], "little"))] = bytes(value[4:])
        elif ad_type == AD_SERVICE_DATA128 and len(value) >= 16:
            svc[_uuid128(value[:16])] = bytes(value[16:])
        i = end
    return {
        "manufacturer_data": mfr,
        "service_data": svc,
        "service_uuids": tuple(uuids),
        "local_name": name,
        "tx_power": tx,
    }


def _advert(
    ts: float,
    address: bytes,
    random: bool,
    rssi: int | None,
    ad: bytes,
    counters: Counter[str],
    adapter: str,
    header_tx: int | None = None,
) -> BleAdvert | None:
    # header_tx: the TX power an extended report carries beside the data; a TX Power Level
    # field in the data itself wins.
    fields = parse_ad(ad, counters)
    if fields is None:
        return None
    mfr = fields["manufacturer_data"]
    svc = fields["service_data"]
    uuids = fields["service_uuids"]
    name = fields["local_name"]
    tx = fields["tx_power"]
    return BleAdvert(
        ts=ts,
        mono=ts,
        address=_format_address(address),
        address_type="random" if random else "public",
        rssi_dbm=rssi,
        tx_power=tx if isinstance(tx, int) else header_tx,
        local_name=name if isinstance(name, str) else None,
        manufacturer_data=mfr if isinstance(mfr, dict) else {},
        service_data=svc if isinstance(svc, dict) else {},
        service_uuids=uuids if isinstance(uuids, tuple) else (),
        adapter=adapter,
    )


def _s8(b: int) -> int:
    return b - 256 if b > 127 else b


# -- HCI events ------------------------------------------------------------------------------
def parse_hci_event(
    ts: float, event: bytes, counters: Counter[str], adapter: str = "hci0"
) -> list[BleAdvert]:
    """Adverts from one HCI event packet (without the H4 type byte)."""
    if len(event) < 3 or event[0] != HCI_EV_LE_META:
        counters["skipped_hci"] += 1
        return []
    plen = event[1]
    params = event[2 : 2 + plen]
    if len(params) < plen or not params:
        counters["malformed_hci"] += 1
        return []
    sub = params[0]
    if sub == LE_ADVERTISING_REPORT:
        return _legacy_reports(ts, params[1:], counters, adapter)
    if sub == LE_EXTENDED_ADVERTISING_REPORT:
        return _extended_reports(ts, params[1:], counters, adapter)
    counters["skipped_hci"] += 1
    return []


def _legacy_reports(ts: float, p: bytes, counters: Counter[str], adapter: str) -> list[BleAdvert]:
    # Num_Reports, then per report: Event_Type, Address_Type, Address(6), Length, Data, RSSI.
    # Controllers send the reports one after another, as Linux parses them.
    out: list[BleAdvert] = []
    if not p:
        counters["malformed_hci"] += 1
        return out
    i = 1
    for _ in range(p[0]):
        if i + 9 > len(p):
            counters["malformed_hci"] += 1
            return out
        addr_type = p[i + 1]
        address = p[i + 2 : i + 8]
        dlen = p[i + 8]
        end = i + 9 + dlen
        if end + 1 > len(p):
            counters["malformed_hci"] += 1
            return out
        rssi_raw = _s8(p[end])
        adv = _advert(
            ts,
            address,
            addr_type in (1, 3),
            rssi_dbm_or_none(rssi_raw),
            p[i + 9 : end],
            counters,
            adapter,
        )
        if adv is not None:
            out.append(adv)
        i = end + 1
    return out


def _extended_reports(ts: float, p: bytes, counters: Counter[str], adapter: str) -> list[BleAdvert]:
    # Per report: Event_Type(2), Address_Type, Address(6), Primary_PHY, Secondary_PHY,
    # Advertising_SID, TX_Power, RSSI, Periodic_Advertising_Interval(2), Direct_Address_Type,
    # Direct_Address(6), Data_Length, Data (Core Vol 4 Part E 7.7.65.13).
    out: list[BleAdvert] = []
    if not p:
        counters["malformed_hci"] += 1
        return out
    i = 1
    for _ in range(p[0]):
        if i + 24 > len(p):
            counters["malformed_hci"] += 1
            return out
        addr_type = p[i + 2]
        address = p[i + 3 : i + 9]
        tx = _s8(p[i + 12])
        rssi = _s8(p[i + 13])
        dlen = p[i + 23]
        end = i + 24 + dlen
        if end > len(p):
            counters["malformed_hci"] += 1
            return out
        adv = _advert(
            ts,
            address,
            addr_type in (1, 3),
            rssi_dbm_or_none(rssi),
            p[i + 24 : end],
            counters,
            adapter,
            None if tx == 127 else tx,
        )
        if adv is not None:
            out.append(adv)
        i = end
    return out


# -- LE link layer ---------------------------------------------------------------------------
def parse_ll(
    ts: float,
    pkt: bytes,
    rssi: int | None,
    counters: Counter[str],
    adapter: str,
    crc_verdict: bool | None = None,
) -> BleAdvert | None:
    """One advertising-channel LL packet (access address, header, payload, CRC).

    ``crc_verdict`` is the sniffer's own CRC check when it made one (True ok, False bad);
    None means unchecked, and then the CRC is verified here. A bad CRC is a counted drop
    (``crc_bad`` by the sniffer's verdict, ``crc_failed`` by ours), never an advert.
    """
    if crc_verdict is False:
        counters["crc_bad"] += 1
        return None
    # Unchecked: verify here. Data-channel CRCs need the connection's CRC init, but those
    # packets are skipped below anyway. A sniffer's verdict is not second-guessed: the nRF
    # Sniffer firmware of a real capture (protocol 3, airpods.pcapng) reports ADV_IND headers
    # with the ChSel bit cleared, so 742 of its packets no longer match their CRC although it
    # verified them on air (740 verify with the bit set; the other 2 are scan requests).
    if (
        crc_verdict is None
        and len(pkt) >= 4
        and int.from_bytes(pkt[:4], "little") == ADV_ACCESS_ADDRESS
        and not ll.adv_crc_ok(pkt)
    ):
        counters["crc_failed"] += 1
        return None
    pdu = ll.parse_adv_pdu(pkt, counters)
    if pdu is None:
        return None
    counters[f"pdu_{_PDU_NAMES.get(pdu.pdu_type, pdu.pdu_type)}"] += 1
    return _advert(
        ts, pdu.address, pdu.random, rssi, pdu.data, counters, adapter, header_tx=pdu.tx_power
    )


_PDU_NAMES = {
    ll.ADV_IND: "adv_ind",
    ll.ADV_NONCONN_IND: "adv_nonconn_ind",
    ll.SCAN_RSP: "scan_rsp",
    ll.ADV_SCAN_IND: "adv_scan_ind",
    ll.ADV_EXT_IND: "adv_ext",
}

# LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR flags (the pcap link-type registry's header description).
_PHDR_SIGNAL_VALID = 0x0002
_PHDR_CRC_CHECKED = 0x0400
_PHDR_CRC_VALID = 0x0800


def _nordic_frame(ts: float, data: bytes, counters: Counter[str]) -> list[BleAdvert]:
    split = ll.parse_nordic(data, counters)
    if split is None:
        return []
    header, pkt = split
    # The nRF Sniffer checks every packet's CRC in hardware and always reports the verdict.
    adv = parse_ll(ts, pkt, header.rssi_dbm, counters, "ll", crc_verdict=header.crc_ok)
    return [adv] if adv is not None else []


def _frame(ts: float, linktype: int, data: bytes, counters: Counter[str]) -> list[BleAdvert]:
    if linktype == LINKTYPE_NORDIC_BLE:
        return _nordic_frame(ts, data, counters)
    if linktype == LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR:
        if len(data) < 10:
            counters["malformed_ll"] += 1
            return []
        flags = data[8] | (data[9] << 8)
        rssi = _s8(data[1]) if flags & _PHDR_SIGNAL_VALID else None
        verdict = bool(flags & _PHDR_CRC_VALID) if flags & _PHDR_CRC_CHECKED else None
        adv = parse_ll(ts, data[10:], rssi, counters, "ll", crc_verdict=verdict)
        return [adv] if adv is not None else []
    if linktype == LINKTYPE_BLUETOOTH_LE_LL:
        adv = parse_ll(ts, data, None, counters, "ll")
        return [adv] if adv is not None else []
    if linktype == LINKTYPE_BLUETOOTH_HCI_H4_WITH_PHDR:
        data = data[4:]  # 4-byte direction header
    if data and data[0] == H4_EVENT:
        return parse_hci_event(ts, data[1:], counters)
    counters["skipped_hci"] += 1
    return []


# -- containers ------------------------------------------------------------------------------
def read_btsnoop(data: bytes, counters: Counter[str]) -> Iterator[BleAdvert]:
    """Adverts from btsnoop bytes (H1 or H4 datalink)."""
    if len(data) < _BTSNOOP_HDR.size:
        raise RecordingError("btsnoop header is truncated")
    _magic, version, datalink = _BTSNOOP_HDR.unpack_from(data, 0)
    if version != 1 or datalink not in (BTSNOOP_H1, BTSNOOP_H4):
        raise RecordingError(
            f"btsnoop version {version} datalink {datalink} is not supported "
            "(HCI H1 1001 and H4 1002 are)"
        )
    off = _BTSNOOP_HDR.size
    n = len(data)
    while off + _BTSNOOP_REC.size <= n:
        _orig, incl, flags, _drops, ts_us = _BTSNOOP_REC.unpack_from(data, off)
        off += _BTSNOOP_REC.size
        if off + incl > n:
            counters["truncated"] += 1
            return
        pkt = data[off : off + incl]
        off += incl
        ts = (ts_us - BTSNOOP_EPOCH_DELTA_US) / 1e6
        if datalink == BTSNOOP_H4:
            if not pkt or pkt[0] != H4_EVENT:
                counters["skipped_hci"] += 1
                continue
            yield from parse_hci_event(ts, pkt[1:], counters)
        else:
            # H1: flags bit 1 = command/event, bit 0 = received; an event is both.
            if flags & 0x03 != 0x03:
                counters["skipped_hci"] += 1
                continue
            yield from parse_hci_event(ts, pkt, counters)
    if off != n:
        counters["truncated"] += 1


def read_pcap(data: bytes, counters: Counter[str]) -> Iterator[BleAdvert]:
    """Adverts from classic pcap bytes with a Bluetooth link type."""
    if len(data) < 24:
        raise RecordingError("pcap header is truncated")
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    _vmaj, _vmin, _zone, _sig, _snap, linktype = _PCAP_HDR[endian].unpack_from(data, 4)
    linktype &= 0xFFFF
    if linktype not in SUPPORTED_LINKTYPES:
        raise RecordingError(
            f"pcap link type {linktype} is not a BLE capture "
            f"(supported: {', '.join(map(str, SUPPORTED_LINKTYPES))})"
        )
    rec = _PCAP_REC[endian]
    off = 24
    n = len(data)
    scale = 1e-9 if nanos else 1e-6
    while off + rec.size <= n:
        sec, frac, incl, _orig = rec.unpack_from(data, off)
        off += rec.size
        if off + incl > n:
            counters["truncated"] += 1
            return
        yield from _frame(sec + frac * scale, linktype, data[off : off + incl], counters)
        off += incl
    if off != n:
        counters["truncated"] += 1


def read_pcapng(data: bytes, counters: Counter[str]) -> Iterator[BleAdvert]:
    """Adverts from pcapng bytes (Enhanced and Simple Packet Blocks)."""
    for ts, linktype, frame in pcapng_frames(data, counters):
        yield from _frame(ts, linktype, frame, counters)


def pcapng_frames(data: bytes, counters: Counter[str]) -> Iterator[tuple[float, int, bytes]]:
    """(timestamp, link type, frame) of every packet on a BLE interface of pcapng bytes."""
    off = 0
    n = len(data)
    endian = "<"
    interfaces: list[tuple[int, float]] = []  # (linktype, seconds per tick)
    any_supported = False
    while off + 12 <= n:
        btype = int.from_bytes(data[off : off + 4], "little" if endian == "<" else "big")
        if btype == 0x0A0D0D0A:
            bom = data[off + 8 : off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        order: Literal["little", "big"] = "little" if endian == "<" else "big"
        blen = int.from_bytes(data[off + 4 : off + 8], order)
        if blen < 12 or off + blen > n:
            counters["truncated"] += 1
            return
        body = data[off + 8 : off + blen - 4]
        if btype == 1 and len(body) >= 8:  # Interface Description Block
            linktype = int.from_bytes(body[:2], order)
            interfaces.append((linktype, _tsresol(body[8:], order)))
            any_supported = any_supported or linktype in SUPPORTED_LINKTYPES
        elif btype == 6 and len(body) >= 20:  # Enhanced Packet Block
            iface = int.from_bytes(body[:4], order)
            ticks = (int.from_bytes(body[4:8], order) << 32) | int.from_bytes(body[8:12], order)
            cap = int.from_bytes(body[12:16], order)
            if iface < len(interfaces) and 20 + cap <= len(body):
                linktype, unit = interfaces[iface]
                if linktype in SUPPORTED_LINKTYPES:
                    yield ticks * unit, linktype, body[20 : 20 + cap]
                else:
                    counters["skipped_linktype"] += 1
            else:
                counters["malformed_block"] += 1
        elif btype == 3 and interfaces and len(body) >= 4:  # Simple Packet Block
            linktype, _unit = interfaces[0]
            if linktype in SUPPORTED_LINKTYPES:
                yield 0.0, linktype, body[4:]
        off += blen
    if interfaces and not any_supported:
        raise RecordingError(
            f"pcapng has no BLE interface (link types {', '.join(map(str, SUPPORTED_LINKTYPES))})"
        )


def _tsresol(options: bytes, order: Literal["little", "big"]) -> float:
    """Seconds per timestamp tick from the IDB options (if_tsresol, code 9); default 1 µs."""
    i = 0
    while i + 4 <= len(options):
        code = int.from_bytes(options[i : i + 2], order)
        length = int.from_bytes(options[i + 2 : i + 4], order)
        if code == 0:
            break
        if code == 9 and length >= 1 and i + 4 < len(options):
            v = options[i + 4]
            return float(2 ** -(v & 0x7F)) if v & 0x80 else float(10**-v)
        i += 4 + ((length + 3) & ~3)
    return 1e-6
