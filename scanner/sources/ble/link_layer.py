"""The BLE link layer as sniffers capture it: packet CRC, advertising PDUs, Nordic sniffer header.

A sniffer hands over every packet it demodulated, including those whose CRC failed; a bad-CRC
advertisement carries a bit-flipped copy of a real address, and each one would become a phantom
device. So every packet's CRC is honoured: the sniffer's own verdict when it gives one (the
nRF Sniffer's CRC-ok flag, the CRC-checked/CRC-valid flags of link type 256), else our own
check of the 24-bit CRC for advertising-channel packets, whose CRC init is fixed.

Layouts: Core Specification Vol 6 Part B 2.1 (packet: access address, PDU, CRC), 2.3
(advertising PDUs and the Common Extended Advertising Payload Format, 2.3.4) and 3.1.1 (the CRC
LFSR); the nRF Sniffer for Bluetooth LE UART/pcap header (Nordic's ``SnifferAPI`` and
Wireshark's ``nordic_ble`` dissector document the same byte layout). Parsing is hand-written
with explicit bounds checks; a packet that does not fit is counted and skipped.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

ADV_ACCESS_ADDRESS = 0x8E89BED6
# Every advertising-channel packet uses this CRC init (Vol 6 Part B 3.1.1); a data-channel
# packet's init comes from its CONNECT_IND, which a capture may not hold.
ADV_CRC_INIT = 0x555555
CRC_LEN = 3

# PDU types on the advertising physical channel (Vol 6 Part B 2.3, table 2.3).
ADV_IND = 0x0
ADV_DIRECT_IND = 0x1
ADV_NONCONN_IND = 0x2
SCAN_REQ = 0x3
SCAN_RSP = 0x4
CONNECT_IND = 0x5
ADV_SCAN_IND = 0x6
ADV_EXT_IND = 0x7  # also AUX_ADV_IND, AUX_SCAN_RSP, AUX_CHAIN_IND on the secondary channel
# AdvA (6 bytes) followed by AdvData: the PDUs an advertiser sends about itself.
LEGACY_ADV_PDUS = frozenset({ADV_IND, ADV_NONCONN_IND, SCAN_RSP, ADV_SCAN_IND})

# Extended header flags (Vol 6 Part B 2.3.4.1) and the length of the field each announces, in
# the order the fields follow the flags byte.
_EXT_FIELDS = (
    (0x01, 6),  # AdvA
    (0x02, 6),  # TargetA
    (0x04, 1),  # CTEInfo
    (0x08, 2),  # ADI
    (0x10, 3),  # AuxPtr
    (0x20, 18),  # SyncInfo
    (0x40, 1),  # TxPower
)
_EXT_ADVA = 0x01
_EXT_TXPOWER = 0x40


def _crc_table() -> tuple[int, ...]:
    # The LFSR of Vol 6 Part B 3.1.1 (x^24 + x^10 + x^9 + x^6 + x^4 + x^3 + x + 1) held
    # bit-reversed, so bytes are fed least significant bit first, as they are sent on air;
    # 0xDA6000 is the polynomial's taps reversed.
    table = []
    for byte in range(256):
        reg = byte
        for _ in range(8):
            reg = (reg >> 1) ^ 0xDA6000 if reg & 1 else reg >> 1
        table.append(reg)
    return tuple(table)


_CRC_TABLE = _crc_table()


def _reverse24(value: int) -> int:
    return int(f"{value:024b}"[::-1], 2)


def crc24(pdu: bytes, init: int = ADV_CRC_INIT) -> int:
    """The CRC of a PDU (header and payload) as its 3 bytes read little-endian from the packet.

    The LFSR is preset with ``init`` (position 0 = least significant bit) and its position 23
    goes on air first, so the register, held reversed, is the transmitted value directly.
    """
    reg = _reverse24(init)
    table = _CRC_TABLE
    for byte in pdu:
        reg = (reg >> 8) ^ table[(reg ^ byte) & 0xFF]
    return reg


def adv_crc_ok(pkt: bytes) -> bool:
    """Whether an advertising-channel packet (access address, PDU, CRC) carries a right CRC."""
    if len(pkt) < 4 + 2 + CRC_LEN:
        return False
    return crc24(pkt[4:-CRC_LEN]) == int.from_bytes(pkt[-CRC_LEN:], "little")


@dataclass(frozen=True, slots=True)
class AdvPdu:
    """An advertising PDU that names its sender: address, address type, AD bytes."""

    pdu_type: int
    address: bytes  # 6 bytes, little-endian as on air
    random: bool  # TxAdd
    data: bytes  # AdvData / ScanRspData (AD structures)
    tx_power: int | None = None  # from an extended header's TxPower field


def _s8(b: int) -> int:
    return b - 256 if b > 127 else b


def parse_adv_pdu(pkt: bytes, counters: Counter[str]) -> AdvPdu | None:
    """The sender of one advertising-channel packet (access address, header, payload, CRC).

    Counts what it skips: ``skipped_ll_data`` (data-channel access address),
    ``skipped_ll_pdu`` (scan requests, connection requests, directed adverts),
    ``skipped_ext_no_adva`` (an extended advert pointing elsewhere without naming its sender),
    ``malformed_ll``.
    """
    # Bounds: 4 access address + 2 header; the payload length is checked against the header.
    if len(pkt) < 6:
        counters["malformed_ll"] += 1
        return None
    if int.from_bytes(pkt[:4], "little") != ADV_ACCESS_ADDRESS:
        counters["skipped_ll_data"] += 1
        return None
    header = pkt[4]
    length = pkt[5]
    payload = pkt[6 : 6 + length]
    if len(payload) < length:
        counters["malformed_ll"] += 1
        return None
    pdu_type = header & 0x0F
    random = bool(header & 0x40)
    if pdu_type in LEGACY_ADV_PDUS:
        if length < 6:
            counters["malformed_ll"] += 1
            return None
        return AdvPdu(pdu_type, bytes(payload[:6]), random, bytes(payload[6:]))
    if pdu_type == ADV_EXT_IND:
        return _extended(payload, random, counters)
    counters["skipped_ll_pdu"] += 1
    return None


def _extended(payload: bytes, random: bool, counters: Counter[str]) -> AdvPdu | None:
    # Common Extended Advertising Payload Format: 1 byte (extended header length: 6 bits,
    # AdvMode: 2 bits), the extended header (flags byte, then the flagged fields), AdvData.
    if not payload:
        counters["malformed_ll"] += 1
        return None
    hlen = payload[0] & 0x3F
    if 1 + hlen > len(payload):
        counters["malformed_ll"] += 1
        return None
    if hlen == 0:
        counters["skipped_ext_no_adva"] += 1
        return None
    flags = payload[1]
    i = 2
    address: bytes | None = None
    tx: int | None = None
    for bit, size in _EXT_FIELDS:
        if not flags & bit:
            continue
        if i + size > 1 + hlen:
            counters["malformed_ll"] += 1
            return None
        if bit == _EXT_ADVA:
            address = bytes(payload[i : i + 6])
        elif bit == _EXT_TXPOWER:
            raw = _s8(payload[i])
            tx = None if raw == 127 else raw
        i += size
    if address is None:
        # ADV_EXT_IND on a primary channel usually carries only an AuxPtr; the sender's
        # address and data come in the AUX_ADV_IND, a packet of its own.
        counters["skipped_ext_no_adva"] += 1
        return None
    return AdvPdu(ADV_EXT_IND, address, random, bytes(payload[1 + hlen :]), tx)


# -- nRF Sniffer for Bluetooth LE (pcap link type 272, LINKTYPE_NORDIC_BLE) -------------------
# Board id (1), then the UART header: payload length (2, LE), protocol version (1), packet
# counter (2, LE), packet id (1); then the packet header: its length (1, = 10), flags (1),
# channel index (1), RSSI magnitude (1, dBm = minus the byte), event counter (2, LE), and a
# 4-byte time (protocol 3: the sniffer's microsecond clock; protocol 2: microseconds from the
# end of the previous packet to the start of this one). The LL packet follows.
_NORDIC = struct.Struct("<BHBHBBBBBHI")
NORDIC_HEADER_LEN = _NORDIC.size  # 17
# Protocol versions with the layout above (nRF Sniffer 2.x and 3.x/4.x firmware). Version 1
# (sniffer 1.x) lays its lengths out differently and is not read.
NORDIC_PROTOCOLS = frozenset({2, 3})
NORDIC_FLAG_CRC_OK = 0x01
NORDIC_PHY_CODED = 2  # flags bits 4-6: 0 LE 1M, 1 LE 2M, 2 LE Coded


@dataclass(frozen=True, slots=True)
class NordicHeader:
    """The nRF Sniffer's metadata for one captured packet."""

    board: int
    protocol: int
    packet_counter: int
    packet_id: int
    flags: int
    channel: int
    rssi_dbm: int
    event_counter: int
    time_us: int

    @property
    def crc_ok(self) -> bool:
        return bool(self.flags & NORDIC_FLAG_CRC_OK)

    @property
    def phy(self) -> int:
        return (self.flags >> 4) & 0x07


def parse_nordic(frame: bytes, counters: Counter[str]) -> tuple[NordicHeader, bytes] | None:
    """Split one link-type-272 frame into the sniffer header and the LL packet (access address
    onwards, the Coded PHY's coding indicator removed); None (counted) when it does not fit."""
    if len(frame) < NORDIC_HEADER_LEN:
        counters["malformed_nordic"] += 1
        return None
    (board, _plen, proto, counter, pid, hlen, flags, channel, rssi, event, time_us) = (
        _NORDIC.unpack_from(frame, 0)
    )
    if proto not in NORDIC_PROTOCOLS:
        counters["skipped_nordic_protocol"] += 1
        return None
    if hlen != NORDIC_HEADER_LEN - 7:
        counters["malformed_nordic"] += 1
        return None
    header = NordicHeader(board, proto, counter, pid, flags, channel, -rssi, event, time_us)
    pkt = frame[NORDIC_HEADER_LEN:]
    if header.phy == NORDIC_PHY_CODED:
        # On the Coded PHY a coding-indicator byte follows the access address (Vol 6 Part B
        # 2.2); the sniffer keeps it, the CRC does not cover it.
        if len(pkt) < 5:
            counters["malformed_nordic"] += 1
            return None
        pkt = pkt[:4] + pkt[5:]
    return header, pkt
