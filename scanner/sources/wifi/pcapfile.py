"""Our own reader of pcap and pcapng capture files, yielding raw frames.

Why not scapy's reader: it builds a packet object per record, and `import scanner` must not load
scapy. This reader maps the file and walks the records with precompiled structs.

* pcap: both byte orders, microsecond and nanosecond magic.
* pcapng: section header (either byte order, several sections), interface description (link
  type, ``if_tsresol``, ``if_tsoffset``), enhanced, simple and obsolete packet blocks; other
  blocks are skipped by their length.

Only link types 127 (radiotap) and 105 (plain 802.11) are read. A file whose link type is
anything else is refused with a ``RecordingError`` naming it. A file cut short is read up to its
last whole frame and the truncation is counted (``truncated``), never raised.
"""

from __future__ import annotations

import logging
import mmap
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from scanner.errors import RecordingError

_LOGGER = logging.getLogger(__name__)

LINKTYPE_IEEE802_11 = 105
LINKTYPE_IEEE802_11_RADIOTAP = 127
SUPPORTED_LINKTYPES = frozenset({LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP})

# Names for the link types people are likely to feed us, so the refusal says what the file is.
LINKTYPE_NAMES = {
    1: "Ethernet",
    101: "raw IP",
    105: "802.11",
    113: "Linux cooked",
    119: "802.11 with Prism header",
    127: "802.11 with radiotap header",
    163: "802.11 with AVS header",
    192: "PPI",
    201: "Bluetooth HCI H4 with phdr",
    251: "Bluetooth LE LL",
    256: "Bluetooth LE LL with phdr",
}

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"

_PCAP_GLOBAL = {"<": struct.Struct("<IHHiIII"), ">": struct.Struct(">IHHiIII")}
_PCAP_RECORD = {"<": struct.Struct("<IIII"), ">": struct.Struct(">IIII")}
_U16 = {"<": struct.Struct("<H"), ">": struct.Struct(">H")}
_U32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_U32X2 = {"<": struct.Struct("<II"), ">": struct.Struct(">II")}
_I64 = {"<": struct.Struct("<q"), ">": struct.Struct(">q")}
_EPB = {"<": struct.Struct("<IIIII"), ">": struct.Struct(">IIIII")}
_OPB = {"<": struct.Struct("<HHIIII"), ">": struct.Struct(">HHIIII")}

_BT_IDB = 0x00000001
_BT_OPB = 0x00000002
_BT_SPB = 0x00000003
_BT_EPB = 0x00000006
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14

# A record claiming more than this is corrupt, not a jumbo frame (802.11 MPDUs are < 12 kB and
# pcapng blocks of real captures are far below this).
MAX_RECORD_BYTES = 1 << 18

Record = tuple[float, int, bytes]
T = TypeVar("T")
FrameParser = Callable[[bytes, int, float, float, Counter[str]], T | None]


def linktype_name(linktype: int) -> str:
    """``"119 (802.11 with Prism header)"``: the number and, when known, what it means."""
    name = LINKTYPE_NAMES.get(linktype)
    return f"{linktype} ({name})" if name else str(linktype)


def _unsupported(path: Path, linktype: int) -> RecordingError:
    return RecordingError(
        f"{path}: unsupported link type {linktype_name(linktype)}; "
        "expected 127 (802.11 with radiotap header) or 105 (802.11)"
    )


class CaptureFile:
    """An open capture file; iterate ``records()`` for ``(ts, linktype, frame bytes)``.

    Opening checks the format (and, for pcap, the link type) so an unreadable file fails before
    the first record. ``counters`` receives ``records`` and ``truncated`` and any skipped blocks.
    """

    def __init__(self, path: str | Path, counters: Counter[str] | None = None) -> None:
        self.path = Path(path)
        self.counters: Counter[str] = counters if counters is not None else Counter()
        try:
            with self.path.open("rb") as fh:
                size = self.path.stat().st_size
                if size == 0:
                    raise RecordingError(f"{self.path}: empty file, not a pcap/pcapng file")
                self._buf: bytes | mmap.mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise RecordingError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        head = self._buf[:4]
        if head in _PCAP_MAGICS:
            self.format = "pcap"
            self._check_pcap_header()
        elif head == _PCAPNG_SHB:
            self.format = "pcapng"
        else:
            self.close()
            raise RecordingError(f"{self.path}: not a pcap/pcapng file")

    def close(self) -> None:
        """Release the mapping (iteration afterwards is an error)."""
        buf = self._buf
        if isinstance(buf, mmap.mmap):
            buf.close()

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pcap ------------------------------------------------------------------------------
    def _check_pcap_header(self) -> None:
        order, _scale = _PCAP_MAGICS[self._buf[:4]]
        if len(self._buf) < 24:
            self.close()
            raise RecordingError(f"{self.path}: pcap header cut short, not a pcap/pcapng file")
        _magic, _major, _minor, _zone, _sig, _snap, linktype = _PCAP_GLOBAL[order].unpack_from(
            self._buf, 0
        )
        # The upper 16 bits of the link-type word carry FCS length flags (pcap spec).
        linktype &= 0xFFFF
        if linktype not in SUPPORTED_LINKTYPES:
            self.close()
            raise _unsupported(self.path, linktype)
        self.linktype = linktype

    def _pcap_records(self) -> Iterator[Record]:
        buf = self._buf
        order, scale = _PCAP_MAGICS[buf[:4]]
        unpack = _PCAP_RECORD[order].unpack_from
        linktype = self.linktype
        counters = self.counters
        size = len(buf)
        pos = 24
        count = 0
        # Hand-written bounds checks: each record header and body must lie inside the file.
        while pos + 16 <= size:
            sec, frac, caplen, _origlen = unpack(buf, pos)
            end = pos + 16 + caplen
            if caplen > MAX_RECORD_BYTES:
                counters["corrupt_record"] += 1
                _LOGGER.warning("%s: corrupt record at byte %d; stopped reading", self.path, pos)
                break
            if end > size:
                counters["truncated"] += 1
                _LOGGER.info("%s: last frame cut short at byte %d", self.path, pos)
                break
            count += 1
            yield sec + frac * scale, linktype, buf[pos + 16 : end]
            pos = end
        else:
            if pos != size:
                counters["truncated"] += 1
        counters["records"] += count

    # -- pcapng ----------------------------------------------------------------------------
    def _pcapng_records(self) -> Iterator[Record]:
        buf = self._buf
        size = len(buf)
        counters = self.counters
        order = "<"
        # Per interface of the current section: (linktype, seconds per tick, offset s, snaplen)
        ifaces: list[tuple[int, float, int, int]] = []
        any_supported = False
        last_ts = 0.0
        pos = 0
        count = 0
        while pos + 12 <= size:
            btype_raw = buf[pos : pos + 4]
            if btype_raw == _PCAPNG_SHB:
                bom = buf[pos + 8 : pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    if pos == 0:
                        raise RecordingError(f"{self.path}: not a pcap/pcapng file")
                    counters["corrupt_record"] += 1
                    break
                ifaces = []
            btype, blen = _U32X2[order].unpack_from(buf, pos)
            # Bounds: a block is at least 12 bytes, 4-aligned, and inside the file.
            if blen < 12 or blen % 4 or blen > MAX_RECORD_BYTES:
                if pos == 0:
                    raise RecordingError(f"{self.path}: not a pcap/pcapng file")
                counters["corrupt_record"] += 1
                _LOGGER.warning("%s: corrupt block at byte %d; stopped reading", self.path, pos)
                break
            if pos + blen > size:
                counters["truncated"] += 1
                break
            body = pos + 8
            body_end = pos + blen - 4
            if btype in (_BT_EPB, _BT_OPB):
                # Both carry 20 bytes before the frame: interface, timestamp, lengths.
                if body + 20 > body_end:
                    counters["corrupt_record"] += 1
                    pos += blen
                    continue
                if btype == _BT_EPB:
                    iface, hi, lo, caplen, _orig = _EPB[order].unpack_from(buf, body)
                else:
                    iface, _drops, hi, lo, caplen, _orig = _OPB[order].unpack_from(buf, body)
                data_at = body + 20
                if iface >= len(ifaces) or data_at + caplen > body_end:
                    counters["corrupt_record"] += 1
                    pos += blen
                    continue
                linktype, tick, offset, _snap = ifaces[iface]
                if linktype not in SUPPORTED_LINKTYPES:
                    if not any_supported:
                        raise _unsupported(self.path, linktype)
                    counters[f"skipped_linktype_{linktype}"] += 1
                    pos += blen
                    continue
                last_ts = offset + ((hi << 32) | lo) * tick
                count += 1
                yield last_ts, linktype, buf[data_at : data_at + caplen]
            elif btype == _BT_SPB:
                if not ifaces or body + 4 > body_end:
                    counters["corrupt_record"] += 1
                    pos += blen
                    continue
                (origlen,) = _U32[order].unpack_from(buf, body)
                linktype, _tick, _offset, snap = ifaces[0]
                caplen = min(origlen, body_end - body - 4, snap or origlen)
                if linktype not in SUPPORTED_LINKTYPES:
                    if not any_supported:
                        raise _unsupported(self.path, linktype)
                    counters[f"skipped_linktype_{linktype}"] += 1
                    pos += blen
                    continue
                # A simple packet block has no timestamp: it inherits the previous one.
                counters["spb_without_timestamp"] += 1
                count += 1
                yield last_ts, linktype, buf[body + 4 : body + 4 + caplen]
            elif btype == _BT_IDB:
                if body + 8 > body_end:
                    counters["corrupt_record"] += 1
                    break
                linktype = _U16[order].unpack_from(buf, body)[0]
                snap = _U32[order].unpack_from(buf, body + 4)[0]
                tick, offset = self._idb_options(buf, body + 8, body_end, order)
                ifaces.append((linktype, tick, offset, snap))
                any_supported = any_supported or linktype in SUPPORTED_LINKTYPES
            pos += blen
        else:
            if pos != size:
                counters["truncated"] += 1
        counters["records"] += count

    @staticmethod
    def _idb_options(buf: bytes | mmap.mmap, pos: int, end: int, order: str) -> tuple[float, int]:
        """``if_tsresol`` as seconds per tick (default microseconds) and ``if_tsoffset``."""
        tick = 1e-6
        offset = 0
        u16 = _U16[order]
        while pos + 4 <= end:
            code = u16.unpack_from(buf, pos)[0]
            length = u16.unpack_from(buf, pos + 2)[0]
            value_at = pos + 4
            if code == 0 or value_at + length > end:
                break
            if code == _OPT_IF_TSRESOL and length >= 1:
                res = buf[value_at]
                # MSB clear: negative power of 10; set: negative power of 2 (pcapng spec).
                tick = 2.0 ** -(res & 0x7F) if res & 0x80 else 10.0**-res
            elif code == _OPT_IF_TSOFFSET and length >= 8:
                offset = _I64[order].unpack_from(buf, value_at)[0]
            pos = value_at + ((length + 3) & ~3)
        return tick, offset

    def records(self) -> Iterator[Record]:
        """Every frame in file order as ``(ts unix seconds, linktype, bytes)``."""
        if self.format == "pcap":
            return self._pcap_records()
        return self._pcapng_records()

    def parsed(self, parse: FrameParser[T], counters: Counter[str]) -> Iterator[T]:
        """``parse(data, linktype, ts, ts, counters)`` over every frame, yielding non-None results.

        The same as calling ``parse`` on ``records()``, with the pcap record loop and the call
        fused into one generator: replay runs through a whole recording, and the extra
        generator layer would cost a fifth of the parser's time.
        """
        if self.format != "pcap":
            for ts, linktype, data in self._pcapng_records():
                result = parse(data, linktype, ts, ts, counters)
                if result is not None:
                    yield result
            return
        buf = self._buf
        order, scale = _PCAP_MAGICS[buf[:4]]
        unpack = _PCAP_RECORD[order].unpack_from
        linktype = self.linktype
        own = self.counters
        size = len(buf)
        pos = 24
        count = 0
        # Hand-written bounds checks, as in _pcap_records.
        while pos + 16 <= size:
            sec, frac, caplen, _origlen = unpack(buf, pos)
            end = pos + 16 + caplen
            if caplen > MAX_RECORD_BYTES:
                own["corrupt_record"] += 1
                _LOGGER.warning("%s: corrupt record at byte %d; stopped reading", self.path, pos)
                break
            if end > size:
                own["truncated"] += 1
                break
            count += 1
            ts = sec + frac * scale
            result = parse(buf[pos + 16 : end], linktype, ts, ts, counters)
            if result is not None:
                yield result
            pos = end
        else:
            if pos != size:
                own["truncated"] += 1
        own["records"] += count


def read_records(path: str | Path, counters: Counter[str] | None = None) -> Iterator[Record]:
    """Open ``path`` (raising ``RecordingError`` now if unreadable) and iterate its frames."""
    capture = CaptureFile(path, counters)

    def _gen() -> Iterator[Record]:
        try:
            yield from capture.records()
        finally:
            capture.close()

    return _gen()
