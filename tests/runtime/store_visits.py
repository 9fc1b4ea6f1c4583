"""Visitors walking into the zone past a crowd, through a core whose sinks write a real store:
what the store-failure tests replay, with the store refusing writes part of the way."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scanner.core.identity import AddressBleIdentity, AddressWifiIdentity
from scanner.core.options import CoreOptions
from scanner.observations import WifiFrame
from scanner.sinks.evidence import EvidenceKeeper, EvidenceOptions
from scanner.sinks.store import StoreSink
from scanner.sources.wifi.build import probe_request, probe_request_body, radiotap
from scanner.store.db import Store
from tests.core.helpers import Harness, classify_all_handsets, probe

MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03")
# Phones passing by outside the zone during each visit: each is a device row, so a visit's
# writes need new pages of the database (a capped one refuses them).
CROWD = 150


def harness(
    store: Store, retry_every_s: float = 0.0, evidence: EvidenceOptions | None = None
) -> Harness:
    """A core over ``store`` with its store sink (and an evidence keeper, given its options)."""
    core = Harness(
        store,
        CoreOptions(),
        wifi_tracker=AddressWifiIdentity(),
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )
    if evidence is not None:
        keeper = EvidenceKeeper(store, evidence)
        core.runner.sinks.append(keeper)
        core.runner.taps.append(keeper)
    # Retries on the records' timeline (the appliance's is the process's clock): every
    # ``retry_every_s`` of it, each attempt waiting out the connection's busy timeout.
    for sink in core.runner.sinks:
        if isinstance(sink, StoreSink | EvidenceKeeper):
            sink.held.clock = core.core.now
            sink.held.retry_every_s = retry_every_s
    return core


def store_sink(core: Harness) -> StoreSink:
    (sink,) = [s for s in core.runner.sinks if isinstance(s, StoreSink)]
    return sink


def keeper(core: Harness) -> EvidenceKeeper:
    (found,) = [s for s in core.runner.sinks if isinstance(s, EvidenceKeeper)]
    return found


def frame(t: float, mac: str, rssi: int) -> WifiFrame:
    """A probe request with its bytes, as a NIC gives it (the evidence keeper keeps them)."""
    record = probe(t, mac, rssi)
    raw = radiotap(rssi_dbm=rssi) + probe_request(mac, record.seq, probe_request_body())
    return dataclasses.replace(record, raw=raw)


def _walk_in(core: Harness, mac: str, t0: float, t1: float) -> None:
    """Probe bursts every 2 s: weak outside before t0, strong inside until t1, weak after."""
    t = t0 - 20
    while t < t1 + 40:
        rssi = -45 if t0 <= t < t1 else -75
        core.handle(frame(t, mac, rssi))
        core.handle(frame(t + 0.05, mac, rssi))
        t += 2.0


def visits(core: Harness, first: int, last: int) -> None:
    """Visitors ``first`` to ``last - 1``, 200 s apart, each alone in the zone for 60 s."""
    for i in range(first, last):
        t0 = 100.0 + 200.0 * i
        for n in range(CROWD):
            core.handle(frame(t0 - 30 + n * 0.01, f"02:00:00:00:{i + 1:02x}:{n:02x}", -85))
        _walk_in(core, MACS[i], t0, t0 + 60.0)
        core.tick(t0 + 200.0)


@contextmanager
def store_and_holder(path: Path, busy_ms: int) -> Iterator[tuple[Store, sqlite3.Connection]]:
    """The core's store, waiting ``busy_ms`` for the write lock (5 s in the appliance: the same
    failure, sooner), and a second connection to take that lock as another writer would."""
    store = Store(path)
    store.conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        yield store, holder
    finally:
        holder.close()
        store.close()
