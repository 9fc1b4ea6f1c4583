"""Builders of observation records for the core's tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.core.events import CoreEvent, CoreInput
from scanner.core.identity import AddressBleIdentity, AddressWifiIdentity
from scanner.core.options import CoreOptions
from scanner.core.pipeline import Core
from scanner.observations import BleAdvert, SdrBurst, SensorStatus, SourceEvent, WifiFrame
from scanner.runtime.core_runner import CoreRunner, SimulatedGuard
from scanner.sinks import Sink
from scanner.sinks.ndjson import NdjsonSink, line_of
from scanner.sinks.store import StoreInputs, StoreSink
from scanner.store.db import Store

START = 1_764_000_000.0


def probe(t: float, mac: str, rssi: int, fp: str = "fp-a", random_mac: bool = True) -> WifiFrame:
    return WifiFrame(
        ts=START + t,
        mono=t,
        subtype="probe_req",
        mac=mac,
        random_mac=random_mac,
        rssi_dbm=rssi,
        freq_mhz=2437,
        ssid="",
        seq=int(t * 10) % 4096,
        fingerprint=fp,
    )


def advert(t: float, address: str, rssi: int) -> BleAdvert:
    return BleAdvert(
        ts=START + t,
        mono=t,
        address=address,
        address_type="random",
        rssi_dbm=rssi,
        manufacturer_data={76: bytes.fromhex("1005031c5a0b2e")},
    )


def burst(t: float, snr: float, band: str = "LTE B20 UL") -> SdrBurst:
    return SdrBurst(
        ts=START + t,
        mono=t,
        t_end=START + t + 0.001,
        freq_mhz=847.0,
        bandwidth_khz=1000.0,
        power_dbfs=-30.0,
        snr_db=snr,
        band=band,
    )


class HandsetClass:
    """What the BLE classifier returns for an iPhone's Nearby Info (the fields the core reads)."""

    kind = "handset"
    vendor = "Apple"
    reason = "Apple Nearby Info"


def classify_all_handsets(_advert: BleAdvert) -> HandsetClass:
    return HandsetClass()


class Harness:
    """A core driven as the appliance drives it (``CoreRunner``), for tests.

    ``events`` keeps every event the core returned; ``lines`` the FORMATS.md lines of alerts
    raised or updated (a transmitter entering), the lines these tests are about; with a store,
    the events also go to ``StoreSink`` and the store's inputs come through ``StoreInputs``.
    Anything else (``alerting``, ``fusion``, ``stats()``) is the core's own.
    """

    def __init__(
        self,
        store: Store | None = None,
        options: CoreOptions | None = None,
        clock: Clock = SYSTEM_CLOCK,
        ack_after_s: float = 0.0,
        **core_kwargs: Any,
    ) -> None:
        self.events: list[CoreEvent] = []
        self.lines: list[dict[str, Any]] = []
        self.all_lines: list[dict[str, Any]] = []
        inputs = StoreInputs(store) if store is not None else None
        run_tag = inputs.next_run() if inputs is not None else ""
        self.core = Core(options, clock, run_tag=run_tag, **core_kwargs)
        sinks: list[Sink] = [_Keep(self), NdjsonSink(self.all_lines.append)]
        if store is not None:
            sinks.append(StoreSink(store))
        guard = SimulatedGuard(ack_after_s) if ack_after_s > 0 else None
        self.runner = CoreRunner(self.core, sinks, inputs, guard)

    def handle(self, record: SourceEvent | CoreInput) -> None:
        if isinstance(record, WifiFrame | BleAdvert | SdrBurst | SensorStatus):
            self.runner.handle(record)
        else:
            self.runner._apply(record)

    def tick(self, now_mono: float) -> None:
        self.runner.tick(now_mono)

    def close(self, now_mono: float | None = None) -> None:
        self.runner.close(now_mono)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.core, name)


def adverts_every_half_second(core: Harness, address: str, t0: float, t1: float, rssi: int) -> None:
    """``address`` advertising at ``rssi`` every 0.5 s from ``t0`` until before ``t1`` (the
    core ticked after each), as a phone's BLE does while its screen is on."""
    t = t0
    while t < t1 - 1e-9:
        core.handle(advert(t, address, rssi))
        core.tick(t)
        t += 0.5


def first_alarm_s(core: Harness) -> float | None:
    """Seconds from ``START`` to the first alert raised; None: none was."""
    alarms = [line["ts"] - START for line in core.lines if line["event"] == "raised"]
    return min(alarms) if alarms else None


def address_harness(ack_after_s: float = 0.0) -> Harness:
    """A harness whose core tells transmitters apart by address alone and takes every advert
    for a handset's: the rule under test decides, not the trackers or the classifier."""
    return Harness(
        None,
        CoreOptions(),
        ack_after_s=ack_after_s,
        wifi_tracker=AddressWifiIdentity(),
        ble_tracker=AddressBleIdentity(),
        classify=classify_all_handsets,
    )


class _Keep:
    """The harness's own sink: every event, and the raised/updated lines."""

    def __init__(self, harness: Harness) -> None:
        self._h = harness

    def handle(self, events: Sequence[CoreEvent]) -> None:
        self._h.events.extend(events)
        for event in events:
            line = line_of(event)
            if line is not None and line["event"] in ("raised", "updated"):
                self._h.lines.append(line)
