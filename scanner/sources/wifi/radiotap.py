"""Radiotap header layout: where the flags, channel and antenna signal sit in a header.

A radiotap header is a chain of ``present`` bitmaps followed by the fields they announce, each
aligned to its natural size relative to the start of the header. Which fields are present, and
therefore where each one sits, depends only on the bitmaps, so the parser computes the layout
once per distinct bitmap chain and caches it (a capture has a handful of distinct chains).
Vendor namespaces carry their own skip length in the data, so layouts crossing one are
computed every time instead of cached.

Reference: https://www.radiotap.org/ (fields, alignment, namespaces, extended bitmaps).
"""

from __future__ import annotations

import struct

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")

# (alignment, size) of the radiotap-namespace fields, by bit number (radiotap.org/fields).
FIELD_ALIGN_SIZE: tuple[tuple[int, int], ...] = (
    (8, 8),  # 0 TSFT
    (1, 1),  # 1 Flags
    (1, 1),  # 2 Rate
    (2, 4),  # 3 Channel: u16 frequency MHz, u16 flags
    (1, 2),  # 4 FHSS
    (1, 1),  # 5 dBm antenna signal (s8)
    (1, 1),  # 6 dBm antenna noise
    (2, 2),  # 7 Lock quality
    (2, 2),  # 8 TX attenuation
    (2, 2),  # 9 dB TX attenuation
    (1, 1),  # 10 dBm TX power
    (1, 1),  # 11 Antenna
    (1, 1),  # 12 dB antenna signal
    (1, 1),  # 13 dB antenna noise
    (2, 2),  # 14 RX flags
    (2, 2),  # 15 TX flags
    (1, 1),  # 16 RTS retries
    (1, 1),  # 17 data retries
    (4, 8),  # 18 XChannel: u32 flags, u16 frequency, u8 channel, u8 max power
    (1, 3),  # 19 MCS
    (4, 8),  # 20 A-MPDU status
    (2, 12),  # 21 VHT
    (8, 12),  # 22 timestamp
    (2, 12),  # 23 HE
    (2, 12),  # 24 HE-MU
    (2, 6),  # 25 HE-MU-other-user
    (1, 1),  # 26 0-length PSDU
    (2, 4),  # 27 L-SIG
)
BIT_FLAGS = 1
BIT_CHANNEL = 3
BIT_DBM_ANTSIGNAL = 5
BIT_XCHANNEL = 18
BIT_TLV = 28
BIT_RADIOTAP_NS = 29
BIT_VENDOR_NS = 30
BIT_EXT = 31

FLAG_FCS_AT_END = 0x10
FLAG_BAD_FCS = 0x40

# A chain longer than this is corrupt; real drivers use at most a handful of bitmaps.
MAX_BITMAPS = 16

Layout = tuple[int, int, int, int]
"""(header length, offset of flags, of channel frequency, of dBm signal); -1 when absent."""


def bitmap_key(data: bytes) -> tuple[bytes, int] | None:
    """The bytes that decide the layout (length + bitmaps) and how many bitmaps there are.

    None when the bitmap chain runs past the header (malformed).
    """
    n = len(data)
    # Bounds: the fixed 8-byte header, then 4 more bytes per extended bitmap, inside the data.
    if n < 8:
        return None
    it_len = data[2] | data[3] << 8
    pos = 4
    words = 1
    while data[pos + 3] & 0x80:
        pos += 4
        words += 1
        if words > MAX_BITMAPS or pos + 4 > it_len or pos + 4 > n:
            return None
    return data[2 : pos + 4], words


def compute_layout(data: bytes) -> tuple[Layout | None, bool]:
    """Walk the bitmaps of the header at the start of ``data``.

    Returns ``(layout, cacheable)``. ``layout`` is None when the header is malformed (bitmaps or
    fields past its stated length). ``cacheable`` is False when a vendor namespace was crossed,
    because its skip length lives in the data rather than in the bitmaps.
    """
    key = bitmap_key(data)
    if key is None:
        return None, False
    _, words = key
    it_len = data[2] | data[3] << 8
    if it_len > len(data):
        return None, False
    flags_off = chan_off = sig_off = xchan_off = -1
    pos = 4 + 4 * words  # first field, right after the last bitmap
    in_radiotap_ns = True
    cacheable = True
    for w in range(words):
        present = _U32.unpack_from(data, 4 + 4 * w)[0]
        if in_radiotap_ns:
            for bit in range(min(present.bit_length(), BIT_RADIOTAP_NS)):
                if not present >> bit & 1:
                    continue
                if bit == BIT_TLV:
                    # TLVs follow to the end of the header and nothing we use is after them.
                    return _finish(it_len, flags_off, chan_off, sig_off, xchan_off), True
                align, size = FIELD_ALIGN_SIZE[bit]
                pos = (pos + align - 1) & -align
                if pos + size > it_len:
                    return None, False
                # Only the first namespace's fields are the frame's own; later radiotap
                # namespaces repeat per-antenna values (first one wins, as scapy and tshark do).
                if bit == BIT_FLAGS and flags_off < 0:
                    flags_off = pos
                elif bit == BIT_CHANNEL and chan_off < 0:
                    chan_off = pos
                elif bit == BIT_DBM_ANTSIGNAL and sig_off < 0:
                    sig_off = pos
                elif bit == BIT_XCHANNEL and xchan_off < 0:
                    xchan_off = pos + 4
                pos += size
        if present >> BIT_VENDOR_NS & 1:
            # Vendor namespace header: OUI[3], sub-namespace, u16 skip length; align 2.
            pos = (pos + 1) & -2
            if pos + 6 > it_len:
                return None, False
            skip = _U16.unpack_from(data, pos + 4)[0]
            pos += 6 + skip
            if pos > it_len:
                return None, False
            in_radiotap_ns = False
            cacheable = False
        elif present >> BIT_RADIOTAP_NS & 1:
            in_radiotap_ns = True
        elif in_radiotap_ns and present >> BIT_EXT & 1 and w + 1 < words:
            # A plain extension of the radiotap namespace announces bits 32..: none is
            # defined, so nothing after this point can be located. What we have is valid.
            break
    return _finish(it_len, flags_off, chan_off, sig_off, xchan_off), cacheable


def _finish(it_len: int, flags_off: int, chan_off: int, sig_off: int, xchan_off: int) -> Layout:
    # The XChannel frequency stands in when the plain Channel field is absent.
    return (it_len, flags_off, chan_off if chan_off >= 0 else xchan_off, sig_off)
