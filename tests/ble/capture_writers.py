"""Writers of btsnoop, pcap and pcapng BLE captures from known payloads (test fixtures).

Kept independent of the importer's code: these follow the format descriptions directly, so a
shared misunderstanding would have to be made twice. tshark checks the bytes on top.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

BTSNOOP_EPOCH_DELTA_US = 0x00DCDDB30F2F8000


@dataclass
class Adv:
    ts: float
    address: str
    random: bool
    rssi: int
    mfr: dict[int, bytes] = field(default_factory=dict)
    svc16: dict[int, bytes] = field(default_factory=dict)
    uuids16: list[int] = field(default_factory=list)
    name: str | None = None
    tx_power: int | None = None


def ad_bytes(a: Adv) -> bytes:
    out = bytearray(b"\x02\x01\x06")  # Flags: LE General Discoverable, BR/EDR not supported
    if a.uuids16:
        body = b"".join(struct.pack("<H", u) for u in a.uuids16)
        out += bytes([len(body) + 1, 0x03]) + body
    for uuid, data in a.svc16.items():
        out += bytes([len(data) + 3, 0x16]) + struct.pack("<H", uuid) + data
    for company, data in a.mfr.items():
        out += bytes([len(data) + 3, 0xFF]) + struct.pack("<H", company) + data
    if a.name is not None:
        raw = a.name.encode()
        out += bytes([len(raw) + 1, 0x09]) + raw
    if a.tx_power is not None:
        out += bytes([2, 0x0A, a.tx_power & 0xFF])
    return bytes(out)


def addr_le(address: str) -> bytes:
    return bytes(int(x, 16) for x in reversed(address.split(":")))


def hci_legacy_report(a: Adv) -> bytes:
    data = ad_bytes(a)
    params = bytes([0x02, 1, 0x00, 1 if a.random else 0]) + addr_le(a.address)
    params += bytes([len(data)]) + data + bytes([a.rssi & 0xFF])
    return bytes([0x3E, len(params)]) + params


def hci_extended_report(a: Adv) -> bytes:
    data = ad_bytes(a)
    rep = struct.pack("<H", 0x0013) + bytes([1 if a.random else 0]) + addr_le(a.address)
    rep += bytes([1, 0, 0xFF, 0x7F, a.rssi & 0xFF]) + struct.pack("<H", 0)
    rep += bytes([0]) + b"\x00" * 6 + bytes([len(data)]) + data
    params = bytes([0x0D, 1]) + rep
    return bytes([0x3E, len(params)]) + params


def btsnoop(
    adverts: list[Adv],
    *,
    extended: bool = False,
    h1: bool = False,
    extra: list[tuple[float, bytes]] | None = None,
) -> bytes:
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, 1001 if h1 else 1002))
    records = [
        (a.ts, hci_extended_report(a) if extended else hci_legacy_report(a)) for a in adverts
    ] + list(extra or [])
    for ts, event in sorted(records, key=lambda r: r[0]):
        pkt = event if h1 else b"\x04" + event
        ts_us = round(ts * 1e6) + BTSNOOP_EPOCH_DELTA_US
        out += struct.pack(">IIIIq", len(pkt), len(pkt), 0x03, 0, ts_us) + pkt
    return bytes(out)


def ble_crc(pdu: bytes, init: int = 0x555555) -> bytes:
    """The 3 CRC bytes as sent, computed bit by bit as Core Vol 6 Part B 3.1.1 draws the LFSR:
    positions 0..23 preset from ``init`` (position 0 = its LSB), data fed LSB first, position
    23 XOR the data bit fed back into 0, 1, 3, 4, 6, 9 and 10; position 23 is sent first."""
    pos = [(init >> i) & 1 for i in range(24)]
    for byte in pdu:
        for bit in range(8):
            fb = pos[23] ^ ((byte >> bit) & 1)
            shifted = [fb, *pos[:23]]
            for tap in (1, 3, 4, 6, 9, 10):
                shifted[tap] ^= fb
            pos = shifted
    sent = [pos[23 - i] for i in range(24)]  # on-air order; each byte goes LSB first
    return bytes(sum(sent[8 * k + i] << i for i in range(8)) for k in range(3))


def ll_packet(a: Adv, pdu_type: int = 0x2, *, bad_crc: bool = False) -> bytes:
    payload = addr_le(a.address) + ad_bytes(a)
    header = pdu_type | (0x40 if a.random else 0)
    pdu = bytes([header, len(payload)]) + payload
    crc = ble_crc(pdu)
    if bad_crc:
        crc = bytes([crc[0] ^ 0x01]) + crc[1:]
    return struct.pack("<I", 0x8E89BED6) + pdu + crc


def nordic(a: Adv, channel: int = 37, *, crc_ok: bool = True, protocol: int = 3) -> bytes:
    """A link-type-272 frame: board, UART header, packet header, then the LL packet."""
    pkt = ll_packet(a, bad_crc=not crc_ok)
    uart = struct.pack("<HBHB", 10 + len(pkt), protocol, 7, 0x02)
    header = bytes([10, 0x01 if crc_ok else 0x00, channel, (-a.rssi) & 0xFF])
    header += struct.pack("<HI", 0, 123456)
    return bytes([9]) + uart + header + pkt


def phdr(a: Adv, channel: int = 0, flags: int | None = None) -> bytes:
    if flags is None:
        flags = 0x0001 | 0x0002 | 0x0010 | 0x0400 | 0x0800  # dewhitened, signal, AA, CRC ok
    return (
        bytes([channel, a.rssi & 0xFF, 0x9C & 0xFF, 0])
        + struct.pack("<I", 0x8E89BED6)
        + struct.pack("<H", flags)
    )


def frame(a: Adv, linktype: int) -> bytes:
    if linktype == 272:
        return nordic(a)
    if linktype == 256:
        return phdr(a) + ll_packet(a)
    return ll_packet(a)


def pcap(adverts: list[Adv], linktype: int = 256) -> bytes:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for a in adverts:
        body = frame(a, linktype)
        sec = int(a.ts)
        usec = round((a.ts - sec) * 1e6)
        out += struct.pack("<IIII", sec, usec, len(body), len(body)) + body
    return bytes(out)


def pcapng(adverts: list[Adv], linktype: int = 256) -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = bytearray(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    out += block(1, struct.pack("<HHI", linktype, 0, 65535))
    for a in adverts:
        body = frame(a, linktype)
        ticks = round(a.ts * 1e6)
        epb = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(body), len(body))
        out += block(6, epb + body)
    return bytes(out)
