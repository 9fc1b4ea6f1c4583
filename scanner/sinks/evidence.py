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
from collections import Counter, OrderedDict, deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Any, Protocol

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
# What an item costs in memory beyond its payload, counted against the cap: the item, its key,
# its two times, its place in the index by key and the bytes object's header (250 bytes with a
# crowd's 20 frames a MAC, measured with tracemalloc on CPython 3.11), plus the burst record an
# SDR item keeps (160 bytes). Counting the payload alone let a crowd of small frames hold three
# times the cap: 100 MB of rings under 6,000 records a second.
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
# Devices remembered for their identifiers: the core forgets silent devices after hours; a
# bound keeps a week of churn from growing this map without end.
MAX_DEVICES = 20000


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
    mono: float
    ts: float
    key: str  # "wifi:<mac>", "ble:<ADDRESS>", "sdr:<band>": the core's device keys
    radio: str
    payload: bytes  # frame bytes, the JSONL line, or a burst's IQ (empty: cut from a recording)
    burst: SdrBurst | None = None
    # Where the item entered the rings (the keeper's count of items): a device's pre-roll from
    # the index by key comes out in the rings' own order.
    seq: int = 0


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


@dataclass(slots=True)
class _Capture:
    """One alert's evidence being kept."""

    alert_id: str
    device_ids: set[str]
    keys: dict[str, str]  # device key -> device id
    # Uplink energy has no device to tell apart: an alert the SDR supports keeps every
    # in-band burst (off-plan bursts never reach the core) while it is open.
    energy: bool = False
    digests: dict[str, list[bytes]] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)


# A BLE item's line, as ``json.dumps(..., separators=(", ", ": "))`` writes it, from an encoder
# made once: ``json.dumps`` with any argument makes a new one each call, a microsecond of the
# core's thread for each of a busy gate's thousand adverts a second.
_BLE_LINE = json.JSONEncoder(separators=(", ", ": "))


def item_cost(item: _Item) -> int:
    """The bytes an item holds in memory, as the ring's cap counts them."""
    extra = BURST_OVERHEAD_BYTES if item.burst is not None else 0
    return len(item.payload) + ITEM_OVERHEAD_BYTES + extra


def item_of(record: SourceEvent, seq: int = 0) -> _Item | None:
    """The ring item of a record (``seq``: its place in the rings); None for records that
    carry no evidence."""
    if isinstance(record, WifiFrame):
        if not record.raw:
            return None
        key = f"wifi:{record.mac.lower()}"
        return _make_item(record.mono, record.ts, key, "wifi", record.raw, None, seq)
    if isinstance(record, BleAdvert):
        line = _BLE_LINE.encode(advert_to_json(record)).encode("utf-8")
        return _make_item(
            record.mono, record.ts, f"ble:{record.address.upper()}", "ble", line, None, seq
        )
    if isinstance(record, SdrBurst):
        band = record.band or f"{record.freq_mhz:.1f} MHz"
        # The payload counts the burst's own IQ (live capture cuts it) against the ring's cap.
        return _make_item(record.mono, record.ts, f"sdr:{band}", "sdr", record.iq, record, seq)
    return None


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
        self._rings: dict[str, deque[_Item]] = {}
        self._ring_bytes: Counter[str] = Counter()
        # The rings' items by key, oldest first: an alert's new MAC or address finds its
        # pre-roll here at once, where a walk of the rings (up to 16 MB of items a radio) held
        # the core for hundreds of milliseconds under a crowd. A key leaves with its last item.
        self._by_key: dict[str, list[_Item]] = {}
        self._seq = 0
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
        # what is looked up more than once is looked up once.
        item = item_of(record, self._seq)
        if item is None:
            return
        self._seq += 1
        self._last_ts = max(self._last_ts, item.ts)
        radio = item.radio
        ring = self._rings.get(radio)
        if ring is None:
            ring = self._rings[radio] = deque()
        ring.append(item)
        by_key = self._by_key
        same_key = by_key.get(item.key)
        if same_key is None:
            by_key[item.key] = [item]
        else:
            same_key.append(item)
        ring_bytes = self._ring_bytes[radio] + item_cost(item)
        horizon = item.mono - self.options.pre_roll_s
        cap = self.options.ring_bytes
        # Oldest first: older than the pre-roll, or past the byte cap (a counted loss of
        # pre-roll, never of an open alert's records: those are kept as they arrive).
        while ring and (ring[0].mono < horizon or ring_bytes > cap):
            old = ring.popleft()
            ring_bytes -= item_cost(old)
            self._unindex(old)
            if old.mono >= horizon:
                self.counters[f"{radio}_ring_full"] += 1
        self._ring_bytes[radio] = ring_bytes
        for capture in self._open.values():
            device_id = capture.keys.get(item.key)
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
                    self._keep_all(capture, "sdr", list(self._rings.get("sdr", ())))
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
        held = [item for key in new for item in self._by_key.get(key, ())]
        order = {radio: n for n, radio in enumerate(self._rings)}
        held.sort(key=lambda item: (order[item.radio], item.seq))
        self._keep_all(capture, device_id, held)

    def _unindex(self, old: _Item) -> None:
        # Rings drop their oldest item first, and a key's items are in ring order: the item
        # leaving its ring is the first of its key's.
        same_key = self._by_key.get(old.key)
        if same_key is None:
            return
        del same_key[0]
        if not same_key:
            del self._by_key[old.key]

    def _keep_all(self, capture: _Capture, device_id: str, items: list[_Item]) -> None:
        """``_keep`` each item in order (grouped by radio); once a radio's cap is reached, the
        rest of its items are counted as not kept at once rather than one by one (a crowd's
        SDR ring holds tens of thousands of bursts, the cap 64)."""
        for radio, group in groupby(items, key=attrgetter("radio")):
            run = list(group)
            for n, item in enumerate(run):
                if len(capture.digests.get(radio, ())) >= self._limit(radio):
                    capture.dropped[radio] += len(run) - n
                    self.counters[f"{radio}_over_alert_cap"] += len(run) - n
                    break
                self._keep(capture, device_id, item)

    def _limit(self, radio: str) -> int:
        return self.options.iq_windows if radio == "sdr" else self.options.alert_items

    def _keep(self, capture: _Capture, device_id: str, item: _Item) -> None:
        # Each item is kept once per alert: live as it arrives for keys already known, or from
        # the ring when its key becomes known (before that it was not kept live).
        digests = capture.digests.setdefault(item.radio, [])
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
