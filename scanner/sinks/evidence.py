"""Keeping the raw evidence behind each alert: ring buffers per radio, and the rows kept.

Where the raw bytes are kept, and why here: the records reach the core's process with what
evidence needs (a ``WifiFrame`` carries the frame's bytes, a ``BleAdvert`` is the advertisement
itself, an ``SdrBurst`` says where its IQ is), and only the core knows which MACs and addresses
belong to an alert's devices (it joins randomised MACs and rotating BLE addresses into one
phone). Rings in the capture daemons would need that knowledge sent back to them, and a second
writer for the store; here the one writer keeps everything, and a replay of recordings goes
through exactly the same code.

``EvidenceKeeper`` is both a tap (``observe``: every record, before the core sees it, enters its
radio's ring) and a sink (``handle``: the core's events). When an alert is raised, the ring's
records of the alert's devices from ``pre_roll_s`` before are kept; while the alert is open,
every new record of its devices is kept as it arrives; when it resolves, the digest of what was
kept is chained into the alert's history (``scanner.store.evidence``). IQ windows are cut from
the radio's IQ (the live SDR's ring, or the replayed recording) for each burst kept.

Bounds: each ring holds at most ``pre_roll_s`` of records and at most ``ring_bytes``; each
alert keeps at most ``alert_items`` items per radio (the SD card's share for one alert).

A write the store refuses (locked, full, an I/O error) loses nothing: the rows and digests wait
in order (``scanner.sinks.held``, as the store sink's events do), at most ``held_bytes`` of
them, and are written before anything newer once the store takes writes again.
"""

from __future__ import annotations

import json
import logging
import struct
import zlib
from array import array
from collections import Counter, OrderedDict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from scanner.core.devices import MAX_DEVICES as CORE_MAX_DEVICES
from scanner.core.events import (
    AlertRaised,
    AlertResolved,
    AlertUpdated,
    CoreEvent,
    DeviceChanged,
    EvidenceWanted,
)
from scanner.makers import maker
from scanner.observations import BleAdvert, SdrBurst, SourceEvent, WifiFrame
from scanner.sinks.held import HeldBatches
from scanner.sources.ble.recorder import advert_to_json
from scanner.store.db import Store
from scanner.store.evidence import (
    FORMAT_BLE,
    FORMAT_SIGMF,
    FORMAT_WIFI,
    EvidenceRow,
    digest_of,
    insert_rows_in,
    item_digest,
    item_digest_sigmf,
    record_digest_in,
    sigmf_archive,
)

_LOGGER = logging.getLogger(__name__)

# Pre-roll: the oldest record that can have shaped the decision to alarm. The core joins a
# phone's MACs and addresses over gaps of up to ``identity_gap_s`` (120 s) and a join of two
# radios looks back ``link_alone_window_s`` (90 s); 120 s before the alert holds both.
PRE_ROLL_S = 120.0
# A ring's byte cap: at a busy gate (a few hundred probe requests a second) 120 s of Wi-Fi is
# about 13 MB as held in memory (see ``ITEM_OVERHEAD_BYTES``); 16 MB per radio keeps three
# radios under 50 MB of a Pi's RAM.
RING_BYTES = 16 * 1024 * 1024
# What the cap counts for an item beyond its payload: what an item cost in memory when each was
# an object of its own (its key, its two times, its place in the index by key and the bytes
# object's header: 250 bytes with a crowd's 20 frames a MAC, measured with tracemalloc on
# CPython 3.11), plus the burst record an SDR item kept (160 bytes). Counting the payload alone
# let a crowd of small frames hold three times the cap: 100 MB of rings under 6,000 records a
# second. The rings now hold an item in about 50 bytes beside its payload (``_Ring``), and the
# count stays as it was, so the cap keeps the same items: the same pre-roll in less memory.
ITEM_OVERHEAD_BYTES = 256
BURST_OVERHEAD_BYTES = 160
# Items kept per alert and radio: a phone probes in bursts of a few frames every few seconds
# to a minute, so 5000 frames is an hour's stay; the SD card keeps at most ~2 MB per alert
# and radio of frames (~400 bytes each) and 64 IQ windows of a few kB.
ALERT_ITEMS = 5000
IQ_WINDOWS = 64
# Rows are written in batches (one transaction each), and at every alert transition.
FLUSH_ROWS = 256
# Rows held while the store refuses writes, by payload bytes: a typical alert (a phone a few
# minutes in the zone) keeps some hundred frames, tens of kB, so 16 MB holds the evidence of
# hundreds of alerts, or four of the largest (ALERT_ITEMS frames of ~400 bytes on two radios
# and the IQ windows), for the operator to free the disk; it costs the Pi as much RAM as a ring.
HELD_BYTES = 16 * 1024 * 1024
# Devices remembered for their identifiers, as many as the core holds: it drops the longest
# silent first, and a device heard changes at every flush, so the devices that changed here
# most recently are the ones the core still holds. Any more would be devices it has forgotten,
# which no alert can name; a device an alert names is being heard, so it is among these.
MAX_DEVICES = CORE_MAX_DEVICES


class IqWindows(Protocol):
    """Where a burst's IQ can still be found (the live ring, or a replayed recording)."""

    def window(self, burst: SdrBurst) -> tuple[bytes, bytes] | None: ...


@dataclass(frozen=True, slots=True)
class EvidenceOptions:
    """The keeper's bounds (see the module's constants for why each value)."""

    pre_roll_s: float = PRE_ROLL_S
    ring_bytes: int = RING_BYTES
    alert_items: int = ALERT_ITEMS
    iq_windows: int = IQ_WINDOWS
    flush_rows: int = FLUSH_ROWS
    held_bytes: int = HELD_BYTES


@dataclass(frozen=True, slots=True)
class _Item:
    """A ring's record as an alert's evidence takes it (made from the ring when taken)."""

    mono: float
    ts: float
    key: str  # "wifi:<mac>", "ble:<ADDRESS>", "sdr:<band>": the core's device keys
    radio: str
    payload: bytes  # frame bytes, the JSONL line, or a burst's IQ (empty: cut from a recording)
    burst: SdrBurst | None = None


class _KeyItems:
    """The numbers of one key's items in its radio's ring, oldest first (from ``first``)."""

    __slots__ = ("first", "key", "numbers", "radio")

    def __init__(self, key: str, radio: str) -> None:
        self.key = key
        self.radio = radio
        self.numbers = array("q")
        self.first = 0

    def drop_oldest(self) -> bool:
        """The key's oldest item left its ring; True when none is left."""
        self.first += 1
        numbers = self.numbers
        if self.first == len(numbers):
            return True
        # A band's key holds thousands of SDR items: the numbers gone are cut away in runs.
        if self.first >= 64 and 2 * self.first >= len(numbers):
            del numbers[: self.first]
            self.first = 0
        return False

    def live(self) -> array[int]:
        return self.numbers[self.first :]


# Items a Wi-Fi or BLE ring compresses together once the last of them has entered. A crowd's
# frames repeat most of their bytes (radiotap headers, the probe bodies of a few phone models;
# an advert's line the same JSON keys and payloads): 256 of them, 30-70 kB, shrink to a third
# or less at zlib's fastest level, some 0.2 ms of the core's thread a block (25 blocks a second
# under 5,000 frames and 1,000 adverts a second). An alert takes its pre-roll from a block by
# unpacking it whole, which a run of one key's items does once.
BLOCK_ITEMS = 256


class _Sealed:
    """The mark of an item whose payload is in its block (``_Ring.blocks``)."""

    __slots__ = ()


_SEALED = _Sealed()


class _Ring:
    """One radio's recent records, oldest first, held compactly.

    An item was an object of seven (its times boxed as floats, its key a string of its own),
    some 250 bytes beside its payload; a crowd's 48,000 Wi-Fi frames and 35,000 BLE adverts
    took 27 MB of them. Here an item is a slot in each of a few arrays: its two times and its
    counted cost as machine numbers, its payload (the frame's own bytes object, the advert's
    line, a burst packed by ``_BurstPacker``) and its key's ``_KeyItems`` as references; some
    50 bytes beside its payload. Items are numbered in the order they entered; the item
    numbered ``n`` is at ``n - base``. The oldest leave from ``head``; the arrays are cut
    when a quarter of them is gone, so the cut costs a few moves per item.

    A sealing ring (Wi-Fi, BLE) then compresses its payloads by ``BLOCK_ITEMS``: block ``k``
    holds the payloads of items ``k * BLOCK_ITEMS`` onwards that were bytes when it was
    sealed, as one zlib stream and where each item's bytes end in it; their slots hold
    ``_SEALED``. The payloads of the same items took 20 MB under the crowd as bytes objects
    of their own, a third of that sealed. A block goes when its last item leaves. The SDR ring
    is not sealed: its items are few beside the frames, and a burst's IQ is incompressible.
    """

    __slots__ = (
        "base",
        "blocks",
        "costs",
        "head",
        "keys",
        "monos",
        "payloads",
        "sealing",
        "total",
        "tss",
        "unpacked",
    )

    def __init__(self, *, sealing: bool = False) -> None:
        self.monos = array("d")
        self.tss = array("d")
        self.costs = array("q")
        self.payloads: list[bytes | SdrBurst | _Sealed | None] = []
        self.keys: list[_KeyItems | None] = []
        self.base = 0  # the number of the item at index 0
        self.head = 0  # the index of the oldest item still held
        self.total = 0  # the counted bytes of the items held
        self.sealing = sealing
        # Block number -> its zlib stream and each of its items' end offset in the stream.
        self.blocks: dict[int, tuple[bytes, array[int]]] = {}
        # The block last unpacked, for the next item of a run taken from the same block.
        self.unpacked: tuple[int, bytes] | None = None

    def __len__(self) -> int:
        return len(self.monos) - self.head

    def append(
        self, mono: float, ts: float, cost: int, payload: bytes | SdrBurst, key: _KeyItems
    ) -> int:
        """Hold one item; its number."""
        number = self.base + len(self.monos)
        self.monos.append(mono)
        self.tss.append(ts)
        self.costs.append(cost)
        self.payloads.append(payload)
        self.keys.append(key)
        key.numbers.append(number)
        self.total += cost
        if self.sealing and number % BLOCK_ITEMS == BLOCK_ITEMS - 1:
            self._seal(number // BLOCK_ITEMS)
        return number

    def _seal(self, block: int) -> None:
        first = block * BLOCK_ITEMS
        ends = array("I", bytes(4 * BLOCK_ITEMS))
        parts: list[bytes] = []
        payloads = self.payloads
        end = 0
        # Items of the block already gone (a cap smaller than a block) keep a length of 0.
        for index in range(max(first - self.base, self.head), first + BLOCK_ITEMS - self.base):
            payload = payloads[index]
            if type(payload) is bytes:
                parts.append(payload)
                end += len(payload)
                payloads[index] = _SEALED
            ends[index + self.base - first] = end
        if parts:
            self.blocks[block] = (zlib.compress(b"".join(parts), 1), ends)

    def _sealed_payload(self, number: int) -> bytes:
        block, within = divmod(number, BLOCK_ITEMS)
        stream, ends = self.blocks[block]
        unpacked = self.unpacked
        if unpacked is None or unpacked[0] != block:
            unpacked = self.unpacked = (block, zlib.decompress(stream))
        start = ends[within - 1] if within else 0
        return unpacked[1][start : ends[within]]

    def oldest_mono(self) -> float:
        return self.monos[self.head]

    def drop_oldest(self) -> _KeyItems:
        """Let the oldest item go (its payload at once, or its block with the block's last);
        its key's items."""
        head = self.head
        key = self.keys[head]
        if key is None:  # never: the slots before ``head`` are the only ones emptied
            raise IndexError("ring slot already dropped")
        self.total -= self.costs[head]
        self.payloads[head] = None
        self.keys[head] = None
        number = self.base + head
        if number % BLOCK_ITEMS == BLOCK_ITEMS - 1 and self.blocks:
            block = number // BLOCK_ITEMS
            self.blocks.pop(block, None)
            if self.unpacked is not None and self.unpacked[0] == block:
                self.unpacked = None
        head += 1
        if head >= 256 and 4 * head >= len(self.monos):
            for column in (self.monos, self.tss, self.costs, self.payloads, self.keys):
                del column[:head]
            self.base += head
            head = 0
        self.head = head
        return key

    def numbers(self) -> range:
        """The numbers of the items held, oldest first."""
        start = self.base + self.head
        return range(start, self.base + len(self.monos))

    def at(self, number: int) -> tuple[float, float, bytes | SdrBurst, _KeyItems]:
        """Item ``number``'s mono, ts, payload as held (unpacked from its block when sealed)
        and key (it must be held)."""
        index = number - self.base
        if index < self.head:
            raise IndexError(f"item {number} is no longer held")
        payload, key = self.payloads[index], self.keys[index]
        if payload is None or key is None:
            raise IndexError(f"item {number} is no longer held")
        if isinstance(payload, _Sealed):
            payload = self._sealed_payload(number)
        return self.monos[index], self.tss[index], payload, key


# An SDR item's burst as held in its ring: its end, frequency, bandwidth, power, SNR and gain
# as doubles (a float field read back is the same float), whether it has a gain, and the
# number of its (band, sensor) names: 57 bytes, where the record and its eight boxed floats
# took some 320 (a crowd's ring holds 30,000 bursts).
_BURST = struct.Struct("<6d?H")
# Distinct (band, sensor) pairs named by number: a band plan has a few dozen uplink bands and a
# gate one or two SDR sensors; a burst naming a pair past this many is held as its record.
MAX_BURST_NAMES = 4096


class _BurstPacker:
    """SDR bursts packed into bytes for their ring and back (see ``_BURST``)."""

    def __init__(self) -> None:
        self._names: dict[tuple[str | None, str], int] = {}
        self._by_number: list[tuple[str | None, str]] = []

    def pack(self, burst: SdrBurst) -> bytes | SdrBurst:
        """The burst packed; the record itself when packing would not give it back as it is
        (IQ carried with it, a field not a float, a new name past the bound)."""
        if burst.iq or burst.iq_meta:
            return burst  # its IQ is the payload, hundreds of times the record
        gain = burst.gain_db
        numbers = (
            burst.ts,
            burst.mono,
            burst.t_end,
            burst.freq_mhz,
            burst.bandwidth_khz,
            burst.power_dbfs,
            burst.snr_db,
            0.0 if gain is None else gain,
        )
        if any(type(x) is not float for x in numbers):
            return burst
        names = (burst.band, burst.sensor)
        number = self._names.get(names)
        if number is None:
            if len(self._by_number) >= MAX_BURST_NAMES:
                return burst
            number = self._names[names] = len(self._by_number)
            self._by_number.append(names)
        return _BURST.pack(*numbers[2:], gain is not None, number)

    def unpack(self, held: bytes | SdrBurst, ts: float, mono: float) -> SdrBurst:
        if isinstance(held, SdrBurst):
            return held
        t_end, freq, bandwidth, power, snr, gain, has_gain, number = _BURST.unpack(held)
        band, sensor = self._by_number[number]
        return SdrBurst(
            ts=ts,
            mono=mono,
            t_end=t_end,
            freq_mhz=freq,
            bandwidth_khz=bandwidth,
            power_dbfs=power,
            snr_db=snr,
            band=band,
            gain_db=gain if has_gain else None,
            sensor=sensor,
        )


# An item for every record the core takes: made without ``__init__``'s lookups (``makers``).
_make_item = maker(_Item)


@dataclass(frozen=True, slots=True)
class _Digest:
    """An alert's evidence digest to chain into its history, after its rows."""

    alert_id: str
    ts: float
    radios: dict[str, dict[str, Any]]
    final: bool


def _weight(item: EvidenceRow | _Digest) -> int:
    # A digest is a few hundred bytes and is never dropped: only rows count against the bound.
    return len(item.payload) if isinstance(item, EvidenceRow) else 0


def _is_digest(item: EvidenceRow | _Digest) -> bool:
    return isinstance(item, _Digest)


_HASH_BYTES = 32  # SHA-256, as ``item_digest`` and ``item_digest_sigmf`` give it


class _ItemHashes:
    """One radio's item hashes for one open alert, as ``digest_of`` takes them: each 32-byte
    SHA-256 end to end in one bytearray. A list of bytes objects cost 73 bytes an item, and an
    alert open for hours keeps up to ``alert_items`` a radio (5,000: 365 kB of the core's
    memory a radio, against 160 kB here, for as long as the alert stays open)."""

    __slots__ = ("_hashes",)

    def __init__(self) -> None:
        self._hashes = bytearray()

    def append(self, item_hash: bytes) -> None:
        if len(item_hash) != _HASH_BYTES:
            raise ValueError(f"an item hash is {_HASH_BYTES} bytes, not {len(item_hash)}")
        self._hashes += item_hash

    def __len__(self) -> int:
        return len(self._hashes) // _HASH_BYTES

    def __iter__(self) -> Iterator[bytes]:
        held = bytes(self._hashes)
        return (held[i : i + _HASH_BYTES] for i in range(0, len(held), _HASH_BYTES))


@dataclass(slots=True)
class _Capture:
    """One alert's evidence being kept."""

    alert_id: str
    device_ids: set[str]
    keys: dict[str, str]  # device key -> device id
    # Uplink energy has no device to tell apart: an alert the SDR supports keeps every
    # in-band burst (off-plan bursts never reach the core) while it is open.
    energy: bool = False
    digests: dict[str, _ItemHashes] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)

    def hashes(self, radio: str) -> _ItemHashes:
        """``radio``'s item hashes, begun empty: a radio with nothing kept still has its
        digest (count 0 and what was not kept)."""
        held = self.digests.get(radio)
        if held is None:
            held = self.digests[radio] = _ItemHashes()
        return held


# A BLE item's line, as ``json.dumps(..., separators=(", ", ": "))`` writes it, from an encoder
# made once: ``json.dumps`` with any argument makes a new one each call, a microsecond of the
# core's thread for each of a busy gate's thousand adverts a second.
_BLE_LINE = json.JSONEncoder(separators=(", ", ": "))


def _ble_line(advert: BleAdvert) -> bytes:
    """A BLE item's payload: the advert's ``ble.jsonl`` line."""
    return _BLE_LINE.encode(advert_to_json(advert)).encode("utf-8")


def device_keys(device_id: str, identifiers: dict[str, list[str]] | None) -> set[str]:
    """The ring keys of one device: its MACs and BLE addresses (an SDR device is its band)."""
    if device_id.startswith("sdr:"):
        return {device_id}
    if not identifiers:
        return set()
    keys = {f"wifi:{m.lower()}" for m in identifiers.get("macs", ())}
    keys.update(f"ble:{a.upper()}" for a in identifiers.get("ble", ()))
    return keys


class EvidenceKeeper:
    """Rings of recent records per radio, and the evidence of each open alert (see module)."""

    def __init__(
        self,
        store: Store,
        options: EvidenceOptions | None = None,
        iq: IqWindows | None = None,
    ) -> None:
        self.store = store
        self.options = options or EvidenceOptions()
        self.iq = iq
        self.counters: Counter[str] = Counter()
        self._rings: dict[str, _Ring] = {}
        # The rings' items by key, oldest first: an alert's new MAC or address finds its
        # pre-roll here at once, where a walk of the rings (up to 16 MB of items a radio) held
        # the core for hundreds of milliseconds under a crowd. A key leaves with its last item.
        self._by_key: dict[str, _KeyItems] = {}
        self._bursts = _BurstPacker()
        self._devices: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._open: dict[str, _Capture] = {}
        self._pending: list[EvidenceRow] = []
        self.held: HeldBatches[EvidenceRow | _Digest] = HeldBatches(
            store,
            self._write,
            self.options.held_bytes,
            noun="rows",
            counters=self.counters,
            weight=_weight,
            keep=_is_digest,
        )
        self._last_ts = 0.0

    # -- the tap -----------------------------------------------------------------------------
    def observe(self, record: SourceEvent) -> None:
        """One record from a source, before the core handles it."""
        # Every record passes here on the core's thread (some 6,000 a second at a busy gate):
        # what is looked up more than once is looked up once, and an ``_Item`` is made only
        # for an open alert's records.
        held: bytes | SdrBurst
        if isinstance(record, WifiFrame):
            payload = held = record.raw
            if not payload:
                return
            radio, key = "wifi", f"wifi:{record.mac.lower()}"
            cost = len(payload) + ITEM_OVERHEAD_BYTES
        elif isinstance(record, BleAdvert):
            payload = held = _ble_line(record)
            radio, key = "ble", f"ble:{record.address.upper()}"
            cost = len(payload) + ITEM_OVERHEAD_BYTES
        elif isinstance(record, SdrBurst):
            band = record.band or f"{record.freq_mhz:.1f} MHz"
            # The payload counts the burst's own IQ (live capture cuts it) against the cap.
            radio, key, payload = "sdr", f"sdr:{band}", record.iq
            held = self._bursts.pack(record)
            cost = len(payload) + ITEM_OVERHEAD_BYTES + BURST_OVERHEAD_BYTES
        else:
            return
        mono, ts = record.mono, record.ts
        self._last_ts = max(self._last_ts, ts)
        ring = self._rings.get(radio)
        if ring is None:
            ring = self._rings[radio] = _Ring(sealing=radio != "sdr")
        by_key = self._by_key
        same_key = by_key.get(key)
        if same_key is None:
            same_key = by_key[key] = _KeyItems(key, radio)
        ring.append(mono, ts, cost, held, same_key)
        horizon = mono - self.options.pre_roll_s
        cap = self.options.ring_bytes
        monos = ring.monos
        # Oldest first: older than the pre-roll, or past the byte cap (a counted loss of
        # pre-roll, never of an open alert's records: those are kept as they arrive).
        while ring.head < len(monos) and (monos[ring.head] < horizon or ring.total > cap):
            old_mono = monos[ring.head]
            old = ring.drop_oldest()
            if old.drop_oldest():
                del by_key[old.key]
            if old_mono >= horizon:
                self.counters[f"{radio}_ring_full"] += 1
        if not self._open:
            return
        burst = record if isinstance(record, SdrBurst) else None
        item = _Item(mono, ts, key, radio, payload, burst)
        for capture in self._open.values():
            device_id = capture.keys.get(key)
            if device_id is not None:
                self._keep(capture, device_id, item)
            elif capture.energy and item.burst is not None:
                self._keep(capture, "sdr", item)

    # -- the sink ----------------------------------------------------------------------------
    def handle(self, events: Sequence[CoreEvent]) -> None:
        # Devices first: an alert's devices go out in the same step as the alert.
        for event in events:
            if isinstance(event, DeviceChanged):
                self._device(event)
        for event in events:
            if isinstance(event, EvidenceWanted):
                capture = self._open.get(event.alert_id)
                if capture is None:
                    self._start(event.alert_id, event.device_ids)
                else:
                    self._add_devices(capture, event.device_ids)
            elif isinstance(event, AlertRaised | AlertUpdated):
                capture = self._open.get(event.alert.id)
                if capture is None:
                    if isinstance(event, AlertUpdated):
                        continue  # an alert adopted from an earlier run: its capture ended
                    capture = self._start(event.alert.id, event.alert.device_ids)
                else:
                    self._add_devices(capture, event.alert.device_ids)
                if "sdr" in event.alert.sensors and not capture.energy:
                    capture.energy = True
                    ring = self._rings.get("sdr")
                    if ring is not None:
                        self._keep_held(capture, "sdr", "sdr", ring.numbers())
            elif isinstance(event, AlertResolved):
                capture = self._open.pop(event.alert.id, None)
                if capture is not None:
                    self._finish(capture, event.ts, final=True)
        if len(self._pending) >= self.options.flush_rows:
            self.flush()

    def close(self) -> None:
        """The core stops: what is pending is written, open alerts' digests so far chained."""
        for capture in list(self._open.values()):
            self._finish(capture, self._last_ts, final=False)
        self._open.clear()
        self._pending_held()
        if not self.held.flush(force=True):
            _LOGGER.error(
                "closing with %d bytes of evidence the store would not take (%s)",
                self.held.held,
                self.held.failure,
            )

    def flush(self) -> None:
        """Write the rows kept so far (after any the store refused before)."""
        self._pending_held()
        self.held.flush()

    def retry(self) -> None:
        """Time passed without a batch (the core's tick): write what is held, if it is time."""
        if self.held:
            self.held.flush()

    def _pending_held(self) -> None:
        rows, self._pending = self._pending, []
        self.held.hold(rows)

    def _write(self, batch: Sequence[EvidenceRow | _Digest]) -> None:
        """One transaction: the rows, then the digests that count them (synced to disk)."""
        rows = [item for item in batch if isinstance(item, EvidenceRow)]
        digests = [item for item in batch if isinstance(item, _Digest)]
        with self.store.write(durable=bool(digests)) as conn:
            insert_rows_in(conn, rows)
            for digest in digests:
                record_digest_in(
                    conn,
                    digest.alert_id,
                    digest.ts,
                    digest.radios,
                    final=digest.final,
                    pre_roll_s=self.options.pre_roll_s,
                    chain_key=self.store.chain_key,
                )
        self.counters["rows"] += len(rows)

    # -- the work ----------------------------------------------------------------------------
    def _device(self, event: DeviceChanged) -> None:
        device = event.device
        device_id = str(device.get("id", ""))
        identifiers = device.get("identifiers")
        keys = device_keys(device_id, identifiers if isinstance(identifiers, dict) else None)
        # Remembered as a tuple: up to MAX_DEVICES entries, most of one key under a crowd,
        # and a set of one costs 216 bytes against a tuple's 48 (3 MB at the cap).
        self._devices[device_id] = tuple(keys)
        self._devices.move_to_end(device_id)
        while len(self._devices) > MAX_DEVICES:
            self._devices.popitem(last=False)
        for capture in self._open.values():
            if device_id in capture.device_ids:
                self._add_keys(capture, device_id, keys)

    def _start(self, alert_id: str, device_ids: Sequence[str]) -> _Capture:
        capture = _Capture(alert_id, set(), {})
        self._open[alert_id] = capture
        self._add_devices(capture, device_ids)
        self.counters["alerts"] += 1
        return capture

    def _add_devices(self, capture: _Capture, device_ids: Sequence[str]) -> None:
        for device_id in device_ids:
            if device_id in capture.device_ids:
                continue
            capture.device_ids.add(device_id)
            known = self._devices.get(device_id)
            keys = known if known is not None else device_keys(device_id, None)
            self._add_keys(capture, device_id, keys)

    def _add_keys(self, capture: _Capture, device_id: str, keys: Collection[str]) -> None:
        new = {k for k in keys if k not in capture.keys}
        if not new:
            return
        for key in new:
            capture.keys[key] = device_id
        # The pre-roll of the new keys: what the rings still hold of them, in the rings' order
        # (radio by radio, then as they arrived), as the digests and rows record it.
        numbers: dict[str, list[int]] = {}
        for key in new:
            same_key = self._by_key.get(key)
            if same_key is not None:
                numbers.setdefault(same_key.radio, []).extend(same_key.live())
        for radio in self._rings:
            if radio in numbers:
                self._keep_held(capture, device_id, radio, sorted(numbers[radio]))

    def _keep_held(
        self, capture: _Capture, device_id: str, radio: str, numbers: Sequence[int]
    ) -> None:
        """``_keep`` each of ``radio``'s ring items ``numbers`` in order, each made from the
        ring as it is kept; once the radio's cap is reached, the rest are counted as not kept
        at once rather than one by one (a crowd's SDR ring holds tens of thousands of bursts,
        the cap 64)."""
        ring = self._rings[radio]
        limit = self._limit(radio)
        # A burst held packed carried no IQ; with no recording to cut its window from either,
        # ``_keep`` would count it as not kept: counted here without unpacking it (an alert
        # the SDR supports takes the whole SDR ring, 30,000 bursts under a crowd).
        no_iq = radio == "sdr" and self.iq is None
        for n, number in enumerate(numbers):
            if len(capture.digests.get(radio, ())) >= limit:
                capture.dropped[radio] += len(numbers) - n
                self.counters[f"{radio}_over_alert_cap"] += len(numbers) - n
                break
            if no_iq and type(ring.payloads[number - ring.base]) is bytes:
                capture.hashes(radio)
                capture.dropped["sdr_no_iq"] += 1
                self.counters["sdr_no_iq"] += 1
                continue
            self._keep(capture, device_id, self._item(ring, radio, number))

    def _item(self, ring: _Ring, radio: str, number: int) -> _Item:
        mono, ts, held, same_key = ring.at(number)
        if radio != "sdr" and isinstance(held, bytes):
            return _Item(mono, ts, same_key.key, radio, held)
        burst = self._bursts.unpack(held, ts, mono)
        return _Item(mono, ts, same_key.key, radio, burst.iq, burst)

    def _limit(self, radio: str) -> int:
        return self.options.iq_windows if radio == "sdr" else self.options.alert_items

    def _keep(self, capture: _Capture, device_id: str, item: _Item) -> None:
        # Each item is kept once per alert: live as it arrives for keys already known, or from
        # the ring when its key becomes known (before that it was not kept live).
        digests = capture.hashes(item.radio)
        if len(digests) >= self._limit(item.radio):
            capture.dropped[item.radio] += 1
            self.counters[f"{item.radio}_over_alert_cap"] += 1
            return
        if item.burst is not None:
            burst = item.burst
            if burst.iq:
                pair: tuple[bytes, bytes] | None = (burst.iq_meta, burst.iq)
            else:
                pair = self.iq.window(burst) if self.iq is not None else None
            if pair is None:
                capture.dropped["sdr_no_iq"] += 1
                self.counters["sdr_no_iq"] += 1
                return
            meta, data = pair
            payload = sigmf_archive(meta, data, f"burst-{len(digests) + 1}")
            digests.append(item_digest_sigmf(meta, data))
            fmt = FORMAT_SIGMF
        else:
            payload = item.payload
            digests.append(item_digest(payload))
            fmt = FORMAT_WIFI if item.radio == "wifi" else FORMAT_BLE
        self._pending.append(
            EvidenceRow(capture.alert_id, device_id, item.radio, item.ts, fmt, payload)
        )

    def _finish(self, capture: _Capture, ts: float, *, final: bool) -> None:
        radios = {
            radio: {
                "count": len(digests),
                "sha256": digest_of(digests),
                "not_kept": capture.dropped.get(radio, 0)
                + (capture.dropped.get("sdr_no_iq", 0) if radio == "sdr" else 0),
            }
            for radio, digests in sorted(capture.digests.items())
        }
        rows: list[EvidenceRow | _Digest] = [*self._pending]
        rows.append(_Digest(capture.alert_id, ts, radios, final))
        self._pending = []
        self.held.hold(rows)
        self.held.flush()
        _LOGGER.info(
            "evidence of alert %s: %s",
            capture.alert_id,
            ", ".join(f"{r} {v['count']}" for r, v in radios.items()) or "nothing heard",
        )


def keeper_for_scenario(
    store: Store, directory: str | Path, options: EvidenceOptions | None = None
) -> EvidenceKeeper:
    """The keeper of a replayed scenario: IQ windows cut from its SDR recordings."""
    from scanner.sources.replay import scenario_iq

    return EvidenceKeeper(store, options, scenario_iq(directory))
