"""Building 802.11 frames with radiotap headers: for the simulator, benchmarks and tests.

The inverse of the parser, kept deliberately simple: a radiotap header with flags, channel and
dBm signal (optionally TSFT, FCS and extra antenna namespaces), and probe requests or data frames
from a station. Real drivers' variety is covered by the real captures, not by this module.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_Q = struct.Struct("<Q")

# Element bodies of a typical 2.4 GHz smartphone probe request (rates, HT capabilities,
# extended capabilities), used when a caller does not give its own.
DEFAULT_RATES = bytes([0x02, 0x04, 0x0B, 0x16])
DEFAULT_EXT_RATES = bytes([0x0C, 0x12, 0x18, 0x24, 0x30, 0x48, 0x60, 0x6C])
DEFAULT_HT_CAPS = bytes.fromhex("2d0117ff" + "00" * 22)  # cap info, A-MPDU, MCS set ...
DEFAULT_EXT_CAPS = bytes.fromhex("0000080400000040")


def mac_bytes(mac: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` to six bytes."""
    return bytes.fromhex(mac.replace(":", ""))


def radiotap(
    *,
    rssi_dbm: int | None = -60,
    freq_mhz: int | None = 2437,
    fcs: bool = False,
    bad_fcs: bool = False,
    tsft: int | None = None,
    antennas: Sequence[int] = (),
) -> bytes:
    """A radiotap header: [TSFT] flags [channel] [dBm signal], then one namespace per antenna."""
    words: list[int] = []
    fields = bytearray()
    present = 0
    if tsft is not None:
        present |= 1 << 0
    present |= 1 << 1
    if freq_mhz is not None:
        present |= 1 << 3
    if rssi_dbm is not None:
        present |= 1 << 5
    if antennas:
        present |= (1 << 29) | (1 << 31)
    words.append(present)
    for k, _ in enumerate(antennas):
        more = (1 << 29) | (1 << 31) if k + 1 < len(antennas) else 0
        words.append((1 << 5) | (1 << 11) | more)
    header_len = 4 + 4 * len(words)

    def align(n: int) -> None:
        while (header_len + len(fields)) % n:
            fields.append(0)

    if tsft is not None:
        align(8)
        fields += _Q.pack(tsft)
    flags = (0x10 if fcs or bad_fcs else 0) | (0x40 if bad_fcs else 0)
    fields.append(flags)
    if freq_mhz is not None:
        align(2)
        fields += _U16.pack(freq_mhz) + _U16.pack(0x00A0 if freq_mhz < 3000 else 0x0140)
    if rssi_dbm is not None:
        fields += struct.pack("<b", rssi_dbm)
    for idx, signal in enumerate(antennas):
        fields += struct.pack("<bB", signal, idx)
    total = header_len + len(fields)
    head = struct.pack("<BBH", 0, 0, total) + b"".join(_U32.pack(w) for w in words)
    return head + bytes(fields)


def element(eid: int, body: bytes) -> bytes:
    """One information element."""
    return bytes((eid, len(body))) + body


def probe_request_body(
    ssid: str | bytes | None = "",
    *,
    rates: bytes = DEFAULT_RATES,
    ext_rates: bytes = DEFAULT_EXT_RATES,
    ht_caps: bytes | None = DEFAULT_HT_CAPS,
    ext_caps: bytes | None = DEFAULT_EXT_CAPS,
    vendor: Sequence[bytes] = (),
    channel: int | None = 6,
) -> bytes:
    """The element list of a probe request (SSID first, as every phone sends it)."""
    out = bytearray()
    if ssid is not None:
        out += element(0, ssid.encode() if isinstance(ssid, str) else ssid)
    out += element(1, rates)
    if ext_rates:
        out += element(50, ext_rates)
    if channel is not None:
        out += element(3, bytes([channel]))
    if ht_caps is not None:
        out += element(45, ht_caps)
    if ext_caps is not None:
        out += element(127, ext_caps)
    for v in vendor:
        out += element(221, v)
    return bytes(out)


def probe_request(mac: str, seq: int, body: bytes, *, bssid: str = "ff:ff:ff:ff:ff:ff") -> bytes:
    """An 802.11 probe request (no FCS) from ``mac``."""
    return (
        b"\x40\x00\x00\x00"
        + b"\xff" * 6
        + mac_bytes(mac)
        + mac_bytes(bssid)
        + _U16.pack((seq & 0xFFF) << 4)
        + body
    )


def data_frame(
    mac: str, bssid: str, seq: int, *, subtype: int = 8, to_ds: bool = True, from_ds: bool = False
) -> bytes:
    """A data-type frame (default QoS data to the AP) with a short dummy payload."""
    fc1 = (0x01 if to_ds else 0) | (0x02 if from_ds else 0)
    header = (
        bytes(((subtype << 4) | 0x08, fc1))
        + b"\x00\x00"
        + mac_bytes(bssid)
        + mac_bytes(mac)
        + b"\xff" * 6
        + _U16.pack((seq & 0xFFF) << 4)
    )
    if from_ds and to_ds:
        header += mac_bytes(mac)
    if subtype & 0x08:
        header += b"\x00\x00"
    payload = b"" if subtype & 0x04 else b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + b"\x00" * 20
    return header + payload


def with_fcs(frame: bytes) -> bytes:
    """Append the frame check sequence (CRC-32) as a driver with FCS reporting does."""
    return frame + _U32.pack(zlib.crc32(frame))
