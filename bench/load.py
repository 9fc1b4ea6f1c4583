"""Sustained load through the all-in-one runner: Wi-Fi + BLE + SDR into the real core and store.

Three paced sources (real ``Source`` subclasses in capture threads) offer 5,000 Wi-Fi probe
requests a second (raw radiotap frames through the real parser, from a crowd whose randomised
MACs keep changing), 1,000 BLE advertisements a second (rotating addresses) and a continuous
stream of SDR uplink bursts. The crowd churns: 250 new Wi-Fi MACs and 100 new BLE addresses a
second, as per-burst MAC randomisation in a crowd, or someone flooding random MACs to exhaust the
scanner's memory, produces. They feed the in-process transport into the real core, which writes
the real store, all supervised and served by ``scanner.runtime.serve.serve`` as ``checkpoint
run`` does. A visitor walks into the zone every two minutes, so alerts open and close under load.

Measured: the deepest the core's queue got (it must stay bounded), records offered, handled and
dropped (every record is one of them or still queued at the end), the rates achieved against the
rates offered, and the process's RSS over time (start, middle, end, and the slope after warm-up
in MB per minute: flat means no leak). ``quick`` runs 20 s; the full run is 10 minutes.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.observations import BleAdvert, Radio, SdrBurst, SensorState, SourceEvent
from scanner.runtime.build import core_loop_factory
from scanner.runtime.components import CoreLoop, SourceComponent
from scanner.runtime.serve import HealthWriter, serve
from scanner.runtime.supervisor import Supervisor
from scanner.runtime.transport import EventQueue, InProcessTransport
from scanner.sources.base import Sink, Source, SourceOptions
from scanner.store.db import Store

# Offered rates (records per second) from the issue: a crowded corridor at a busy gate.
WIFI_RATE = 5000.0
BLE_RATE = 1000.0
SDR_RATE = 250.0  # GSM/LTE uplink bursts found by the DSP, continuously
QUEUE_SIZE = 20_000  # the default [transport] queue_size
# Sources hand over their records in slices this long, as a capture loop reads a socket buffer.
SLICE_S = 0.01
# A visitor's phone is in the zone for this part of every period (seconds into the period).
VISIT_FROM_S, VISIT_UNTIL_S = 5.0, 15.0
# Long enough for the alert to resolve between visits (absent, leave hold, resolve delay).
VISIT_PERIOD_S = 120.0
# RSS is sampled this often; the slope ignores the first fifth of the run (imports, caches,
# the trackers filling up to their steady size).
SAMPLE_EVERY_S = 1.0
WARMUP_FRACTION = 0.2


class PacedSource(Source):
    """A capture thread that offers ``make(i, now)`` records at ``rate`` per second."""

    def __init__(
        self,
        radio: Radio,
        rate: float,
        make: Callable[[int, float, float], SourceEvent | None],
        sink: Sink,
        running: threading.Event,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(SourceOptions(sensor=str(radio)), sink, clock)
        self.radio = radio
        self.rate = rate
        self._make = make
        self._running = running
        self._thread: threading.Thread | None = None
        # Set once this source has offered its last record: a thread the scheduler held back
        # still delivers its backlog after the run ends, and the accounting must wait for it.
        self.done_offering = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"load-{self.radio}", daemon=True)
        self._thread.start()
        self.set_state(SensorState.OK)

    def _run(self) -> None:
        start = self.clock.monotonic()
        made = 0
        while not self.stopping and self._running.is_set():
            now = self.clock.monotonic()
            due = int((now - start) * self.rate)
            wall = self.clock.wall()
            while made < due:
                record = self._make(made, wall, now)
                made += 1
                if record is None:
                    self.counters["parse_skipped"] += 1
                    continue
                self.deliver(record)
            self._stop.wait(SLICE_S)
        self.done_offering.set()
        # Ends quietly once the run is over (the supervisor is told to stop next).
        while not self.stopping:
            self._stop.wait(0.05)

    def stop(self) -> None:
        super().stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.set_state(SensorState.STOPPED)


def _visiting(elapsed: float) -> bool:
    phase = elapsed % VISIT_PERIOD_S
    return VISIT_FROM_S <= phase < VISIT_UNTIL_S


def wifi_maker(t0: float) -> Callable[[int, float, float], SourceEvent | None]:
    """Raw probe requests through the real parser: 250 new randomised MACs a second."""
    from scanner.sources.wifi.build import probe_request, probe_request_body, radiotap
    from scanner.sources.wifi.dot11 import parse_frame
    from scanner.sources.wifi.pcapfile import LINKTYPE_IEEE802_11_RADIOTAP

    bodies = [
        probe_request_body("", vendor=[bytes([0x00, 0x50, 0xF2, 8, n, 0])]) for n in range(40)
    ]
    headers = {rssi: radiotap(rssi_dbm=rssi, freq_mhz=2437) for rssi in range(-95, -30)}
    visitor_body = probe_request_body("", vendor=[b"\x00\x17\xf2\x0a\x00\x01"])
    counters: Counter[str] = Counter()

    def make(i: int, wall: float, mono: float) -> SourceEvent | None:
        if i % 25 == 0 and _visiting(mono - t0):
            # A phone at the gate probes in bursts on top of the crowd.
            frame = headers[-42] + probe_request("02:aa:bb:cc:dd:01", i, visitor_body)
        else:
            k = i // 20
            mac = f"da:{(k >> 16) & 0xFF:02x}:{(k >> 8) & 0xFF:02x}:{k & 0xFF:02x}:00:01"
            frame = headers[-90 + (k % 25)] + probe_request(mac, i, bodies[k % 40])
        return parse_frame(frame, LINKTYPE_IEEE802_11_RADIOTAP, wall, mono, counters)

    return make


_BLE_PAYLOADS = [
    {76: bytes.fromhex("1005031c5a0b2e")},  # Apple Nearby Info (a handset)
    {76: bytes.fromhex("0719010f2022f58f0100")},  # AirPods-style proximity pairing
    {6: bytes.fromhex("0109200233445566778899")},  # Microsoft CDP
    {224: bytes.fromhex("0a0b0c0d")},  # Google
    {89: bytes.fromhex("0201")},  # Nordic (a tag)
]


def ble_maker(t0: float) -> Callable[[int, float, float], SourceEvent | None]:
    """Adverts from a crowd whose random addresses rotate: 100 new addresses a second."""

    def make(i: int, wall: float, mono: float) -> SourceEvent | None:
        if i % 10 == 0 and _visiting(mono - t0):
            return BleAdvert(
                ts=wall,
                mono=mono,
                address="5A:11:22:33:44:55",
                address_type="random",
                rssi_dbm=-45,
                manufacturer_data=_BLE_PAYLOADS[0],
            )
        k = i // 10
        address = f"4{k % 4:X}:{(k >> 16) & 0xFF:02X}:{(k >> 8) & 0xFF:02X}:{k & 0xFF:02X}:00:01"
        return BleAdvert(
            ts=wall,
            mono=mono,
            address=address,
            address_type="random",
            rssi_dbm=-92 + (k % 18),
            local_name=None if k % 7 else f"dev-{k % 1000}",
            manufacturer_data=_BLE_PAYLOADS[k % len(_BLE_PAYLOADS)],
        )

    return make


_BANDS = (
    ("E-GSM-900 UL", 897.4, 200.0),
    ("LTE B20 UL", 847.0, 1080.0),
    ("DCS-1800 UL", 1747.6, 200.0),
)


def sdr_maker(t0: float) -> Callable[[int, float, float], SourceEvent | None]:
    """Uplink bursts on three bands, weak (far phones), the visitor's strong."""

    def make(i: int, wall: float, mono: float) -> SourceEvent | None:
        band, freq, bw = _BANDS[i % len(_BANDS)]
        snr = 34.0 if (i % 5 == 0 and _visiting(mono - t0)) else 6.0 + (i % 9)
        return SdrBurst(
            ts=wall,
            mono=mono,
            t_end=wall + 0.000577,
            freq_mhz=freq + (i % 7) * 0.2,
            bandwidth_khz=bw,
            power_dbfs=-60.0 + snr,
            snr_db=snr,
            band=band,
            gain_db=33.8,
        )

    return make


def rss_mb() -> float:
    """This process's resident set size, from /proc."""
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def slope_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mx) * (v - my) for t, v in samples)
    return cov / var * 60.0


class LoadRun:
    """One load run: build, serve in a thread, sample, stop, drain, account."""

    def __init__(
        self,
        seconds: float,
        workdir: Path,
        queue_size: int = QUEUE_SIZE,
        stall_store_s: float = 0.0,
    ) -> None:
        self.seconds = seconds
        # Mid-run, another writer holds the store's write lock this long (an SD card that
        # stalls a write): the core blocks, its queue fills, and the overflow must be counted.
        self.stall_store_s = stall_store_s
        self.db = workdir / "checkpoint.db"
        self.events = EventQueue(queue_size)
        self.transport = InProcessTransport(self.events)
        self.running = threading.Event()
        self.offered: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.cores: list[CoreLoop] = []
        self.sources: list[PacedSource] = []
        self.max_depth = 0
        self.rss: list[tuple[float, float]] = []
        self.handled_samples: list[tuple[float, int]] = []

    def _sink(self, radio: str) -> Sink:
        offered, dropped, put = self.offered, self.dropped, self.events.put

        def sink(event: SourceEvent) -> None:
            # Counted per radio in the radio's own thread, so no two threads share a counter.
            offered[radio] += 1
            if not put(event):
                dropped[radio] += 1

        return sink

    def _supervisor(self, t0: float) -> Supervisor:
        supervisor = Supervisor(SYSTEM_CLOCK)
        make_core = core_loop_factory(str(self.db), _core_options(), self.events, SYSTEM_CLOCK)

        def core() -> CoreLoop:
            loop = make_core()
            self.cores.append(loop)
            return loop

        supervisor.add("core", core)
        makers = {
            Radio.WIFI: (WIFI_RATE, wifi_maker(t0)),
            Radio.BLE: (BLE_RATE, ble_maker(t0)),
            Radio.SDR: (SDR_RATE, sdr_maker(t0)),
        }
        for radio, (rate, maker) in makers.items():
            supervisor.add(str(radio), self._source_factory(radio, rate, maker), critical=False)
        return supervisor

    def _source_factory(
        self, radio: Radio, rate: float, maker: Callable[[int, float, float], SourceEvent | None]
    ) -> Callable[[], SourceComponent]:
        sink = self._sink(str(radio))

        def build(s: Sink) -> Source:
            source = PacedSource(radio, rate, maker, s, self.running)
            self.sources.append(source)
            return source

        return lambda: SourceComponent(str(radio), build, sink)

    def run(self) -> dict[str, Any]:
        Store(self.db).close()
        stop = threading.Event()
        t0 = SYSTEM_CLOCK.monotonic()
        supervisor = self._supervisor(t0)
        health = HealthWriter(str(self.db), "run")
        self.running.set()
        server = threading.Thread(
            target=serve,
            args=(supervisor,),
            kwargs={"ready_text": "load", "stop": stop, "health": health},
            name="load-serve",
            daemon=True,
        )
        server.start()
        started = time.monotonic()
        next_rss = started
        stall_at = started + self.seconds / 2 if self.stall_store_s > 0 else math.inf
        while (now := time.monotonic()) - started < self.seconds:
            if now >= stall_at:
                stall_at = math.inf
                threading.Thread(target=self._stall_store, daemon=True).start()
            self.max_depth = max(self.max_depth, self.events.qsize())
            if now >= next_rss:
                self.rss.append((now - started, rss_mb()))
                self.handled_samples.append((now - started, self._handled()))
                next_rss += SAMPLE_EVERY_S
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        handled_at_end = self._handled()
        # Sources go quiet; the core drains what is queued, then everything stops.
        self.running.clear()
        drain_deadline = time.monotonic() + 30.0
        for source in self.sources:
            source.done_offering.wait(timeout=max(0.0, drain_deadline - time.monotonic()))
        while self.events.qsize() and time.monotonic() < drain_deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        server.join(timeout=30)
        # Counted once nothing runs: what is still queued now is exactly what no core took.
        left = self.events.qsize()
        return self._result(elapsed, handled_at_end, left, supervisor)

    def _stall_store(self) -> None:
        store = Store(self.db)
        try:
            with store.write():
                time.sleep(self.stall_store_s)
        finally:
            store.close()

    def _handled(self) -> int:
        return sum(c.counters["handled"] + c.counters["handle_errors"] for c in self.cores)

    def _result(
        self, elapsed: float, handled_at_end: int, left: int, supervisor: Supervisor
    ) -> dict[str, Any]:
        offered = sum(self.offered.values())
        dropped = sum(self.dropped.values())
        handled = self._handled()
        errors = sum(c.counters["handle_errors"] for c in self.cores)
        after_warmup = [(t, v) for t, v in self.rss if t >= WARMUP_FRACTION * self.seconds]
        mid = self.rss[len(self.rss) // 2][1] if self.rss else math.nan
        rates = {"wifi": WIFI_RATE, "ble": BLE_RATE, "sdr": SDR_RATE}
        # The core's pace over the last fifth of the run: a store or tracker that slows down
        # as it fills shows here before it shows as drops.
        tail = [s for s in self.handled_samples if s[0] >= (1 - WARMUP_FRACTION) * self.seconds]
        tail_rate = (
            (tail[-1][1] - tail[0][1]) / (tail[-1][0] - tail[0][0])
            if len(tail) >= 2 and tail[-1][0] > tail[0][0]
            else math.nan
        )
        store = Store(self.db)
        try:
            alerts = store.query("SELECT COUNT(*) AS n FROM alerts")[0]["n"]
            integrity = store.query("PRAGMA integrity_check")[0][0]
        finally:
            store.close()
        result: dict[str, Any] = {
            "seconds": round(elapsed, 1),
            "offered_per_s": round(sum(rates.values())),
            "generated_per_s": round(offered / elapsed),
            "handled_per_s": round(handled_at_end / elapsed),
            "handled_per_s_last_fifth": round(tail_rate) if math.isfinite(tail_rate) else None,
            "ratio_generated_vs_offered": round(offered / elapsed / sum(rates.values()), 3),
            "ratio_handled_vs_generated": round(handled / offered, 4) if offered else 0.0,
            "records_offered": offered,
            "records_handled": handled,
            "records_dropped": dropped,
            "records_left_in_queue": left,
            "handle_errors": errors,
            "accounting_exact": offered == handled + dropped + left,
            "drop_ratio": round(dropped / offered, 4) if offered else 0.0,
            "transport_dropped_counter": self.events.counters["dropped_queue_full"],
            "max_queue_depth": self.max_depth,
            "queue_size": self.events.maxsize,
            "rss_start_mb": round(self.rss[0][1], 1) if self.rss else math.nan,
            "rss_mid_mb": round(mid, 1),
            "rss_end_mb": round(self.rss[-1][1], 1) if self.rss else math.nan,
            "rss_slope_mb_per_min": round(slope_per_min(after_warmup), 3),
            "core_restarts": max(0, len(self.cores) - 1),
            "alerts_stored": int(alerts),
            "store_integrity_ok": integrity == "ok",
            "store_mb": round(_db_bytes(self.db) / 1e6, 1),
        }
        for radio in rates:
            result[f"{radio}_generated_per_s"] = round(self.offered[radio] / elapsed)
            result[f"{radio}_dropped"] = self.dropped[radio]
        restarts = {name: h.get("restarts", 0) for name, h in supervisor.health().items()}
        result["component_restarts"] = sum(int(v) for v in restarts.values())
        return result


def _core_options() -> Any:
    from scanner.core.options import CoreOptions

    return CoreOptions()


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.exists())


def run(quick: bool, seconds: float | None = None) -> dict[str, Any]:
    """Run the load for 20 s (quick) or 10 minutes; returns the measurements."""
    duration = seconds if seconds is not None else (20.0 if quick else 600.0)
    with tempfile.TemporaryDirectory(prefix="checkpoint-load-") as tmp:
        return LoadRun(duration, Path(tmp)).run()
