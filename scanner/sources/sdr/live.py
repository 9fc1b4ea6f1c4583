"""The SDR source: a dongle (USB or rtl_tcp) swept across uplink bands, bursts to the core.

Two threads and a bounded queue, as in a Kismet capture helper:

* **capture**: owns the front end. Tunes, discards the settling samples, reads the dwell in
  chunks and hands them over. A full queue is a counted drop, never a stall of the dongle.
* **dsp**: runs the same ``BurstDetector`` replay uses, turns bursts into ``SdrBurst`` records,
  steers the gain, records SigMF if asked, keeps a short IQ ring for evidence snippets, and
  reports health (state, noise floor, gain, overload, reconnects) as ``SensorStatus``.

Start ladder of the capture thread (each failure is classified by ``constants``):

1. open the front end (USB device or rtl_tcp connection) and configure rate, ppm, gain;
2. on failure report the class's state and advice once, wait the class's backoff (doubling,
   capped), and go back to 1: the source never gives up while it is running;
3. stream; a stall or drop closes the front end and goes back to 1; after a good stretch the
   backoff resets;
4. a channel that fails to tune is dropped from the sweep (and said so), the rest go on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.observations import Radio, SdrBurst, SensorState
from scanner.sources.backoff import Backoff
from scanner.sources.base import Sink, Source
from scanner.sources.sdr.constants import OTHER, RETRY_SCHEDULES, STALL, TUNE, FailureClass
from scanner.sources.sdr.dsp import (
    Burst,
    BurstDetector,
    GainController,
    GainPolicy,
    estimate_distance_m,
)
from scanner.sources.sdr.errors import CaptureError
from scanner.sources.sdr.iq_window import MARGIN_S as IQ_MARGIN_S
from scanner.sources.sdr.iq_window import window_pair
from scanner.sources.sdr.options import SdrOptions, Tuning
from scanner.sources.sdr.recorder import SigmfRecorder, save_snippet
from scanner.sources.sdr.replay import to_record
from scanner.sources.sdr.sweep import (
    SweepScheduler,
    downlink_tunings,
    find_carriers,
    mean_spectrum,
    occupied_downlinks,
)

_LOGGER = logging.getLogger(__name__)


class Frontend(Protocol):
    """What the capture loop needs from a dongle: ``RtlTcpClient`` and ``UsbTuner``."""

    @property
    def where(self) -> str: ...

    @property
    def retune_latency_s(self) -> float: ...

    def open(self) -> object: ...

    def close(self) -> None: ...

    def set_center_freq(self, hz: float) -> None: ...

    def set_sample_rate(self, rate: float) -> None: ...

    def set_gain(self, gain_db: float | None) -> None: ...

    def set_freq_correction(self, ppm: int) -> None: ...

    def read(self, n_bytes: int) -> npt.NDArray[np.uint8]: ...

    def discard_buffered(self) -> int: ...


def make_frontend(options: SdrOptions) -> Frontend:
    """The front end the options ask for (USB imports librtlsdr lazily, at open)."""
    if options.transport == "rtl_tcp":
        from scanner.sources.sdr.rtltcp import RtlTcpClient

        return RtlTcpClient(options.host, options.port, options.connect_timeout_s, options.stall_s)
    from scanner.sources.sdr.usb import UsbTuner

    return UsbTuner(options.device_index, options.serial)


@dataclass(frozen=True, slots=True)
class _Chunk:
    dwell: int
    tuning: Tuning
    t0_mono: float  # first sample of the dwell
    t0_wall: float
    offset: int  # samples of this dwell before this chunk
    raw: npt.NDArray[np.uint8] | None  # None marks the end of the dwell


class SdrSource(Source):
    """Live uplink capture (see the module docstring for its threads and start ladder)."""

    radio = Radio.SDR

    def __init__(
        self,
        options: SdrOptions,
        sink: Sink,
        clock: Clock = SYSTEM_CLOCK,
        frontend: Frontend | None = None,
    ) -> None:
        super().__init__(options, sink, clock)
        self.opts = options
        self.frontend = frontend if frontend is not None else make_frontend(options)
        self.plan = options.plan()
        self.scheduler = SweepScheduler(options.tunings(), options.sweep, options.rate * 0.8)
        self.detector = BurstDetector(options.rate, options.detector)
        self.gain = GainController(GainPolicy(fixed_db=options.gain_db))
        self._queue: queue.Queue[_Chunk] = queue.Queue(maxsize=options.queue_chunks)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._gain_request: float | None = self.gain.gain_db
        # Retry waits by failure class; jittered so that sensors that failed together (a
        # shared mast, a power dip) do not retry in lock-step.
        self._backoff: Backoff[FailureClass] = Backoff(
            RETRY_SCHEDULES, scale=options.backoff_scale, jitter=0.1
        )
        self._failure: FailureClass | None = None
        self._tuning: Tuning | None = None
        self._ring: deque[_Chunk] = deque()
        self._ring_samples = 0
        self._recorder: SigmfRecorder | None = None
        self._last_status = -1e18
        self._retry_in: float | None = None
        self._last_survey: float | None = None
        self._last_read_mono: float | None = None
        self._local_cells: list[float] = []
        self._last_other_mhz: float | None = None
        self._other_logged = -1e18

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the capture and DSP threads; returns at once (state "starting")."""
        self._stop.clear()
        self.set_state(SensorState.STARTING, f"opening {self.frontend.where}")
        if self.opts.record:
            self._recorder = SigmfRecorder(self.opts.record, self.opts.rate)
        self._threads = [
            threading.Thread(target=self._capture_main, name="sdr-capture", daemon=True),
            threading.Thread(target=self._dsp_main, name="sdr-dsp", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Stop both threads, release the dongle, finish any recording."""
        super().stop()
        for t in self._threads:
            t.join(timeout=max(5.0, self.opts.stall_s + 1.0))
        self._threads = []
        self.frontend.close()
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
        self.set_state(SensorState.STOPPED, "")

    # -- capture thread --------------------------------------------------------------------
    def _capture_main(self) -> None:
        while not self.stopping:
            try:
                self._open_and_configure()
                self._stream()
            except CaptureError as exc:
                self._on_failure(exc)
            except Exception as exc:  # the daemon must survive anything the library throws
                _LOGGER.exception("SDR capture failed unexpectedly")
                self._on_failure(CaptureError(OTHER, f"{type(exc).__name__}: {exc}"))
            finally:
                self.frontend.close()
        _LOGGER.debug("SDR capture thread ends")

    def _open_and_configure(self) -> None:
        fe = self.frontend
        fe.open()
        fe.set_sample_rate(self.opts.rate)
        if self.opts.ppm:
            fe.set_freq_correction(self.opts.ppm)
        with self._lock:
            gain = self._gain_request
        fe.set_gain(gain)

    def _stream(self) -> None:
        fe = self.frontend
        rate = self.opts.rate
        chunk_bytes = self.opts.read_bytes - self.opts.read_bytes % 2
        settle_bytes = 2 * max(1, round((self.opts.sweep.settle_s + fe.retune_latency_s) * rate))
        dwell_bytes = 2 * max(1, round(self.opts.sweep.dwell_s * rate))
        started = self.clock.monotonic()
        dwell_id = 0
        while not self.stopping:
            if self.opts.survey_downlink and (
                self._last_survey is None
                or self.clock.monotonic() - self._last_survey > self.opts.survey_every_s
            ):
                self._survey(fe)
            with self._lock:
                tuning = self.scheduler.next()
                gain, self._gain_request = self._gain_request, None
            if tuning is None:
                raise CaptureError(TUNE, "no channel of the band plan can be tuned")
            if gain is not None:
                fe.set_gain(gain)
            try:
                fe.set_center_freq(tuning.centre_hz)
            except CaptureError as exc:
                if exc.failure is not TUNE:
                    raise
                with self._lock:
                    self.scheduler.drop(tuning, exc.detail)
                continue
            # The PLL settles, and the USB (and for rtl_tcp, server and TCP) buffers still hold
            # samples of the old frequency: throw them away.
            self.counters["stale_bytes_discarded"] += fe.discard_buffered()
            fe.read(settle_bytes)
            self._last_read_mono = self.clock.monotonic()
            t0_mono, t0_wall = self.clock.monotonic(), self.clock.wall()
            dwell_id += 1
            self._tuning = tuning
            got = 0
            while got < dwell_bytes and not self.stopping:
                raw = fe.read(min(chunk_bytes, dwell_bytes - got))
                self._last_read_mono = self.clock.monotonic()
                self._hand_over(_Chunk(dwell_id, tuning, t0_mono, t0_wall, got // 2, raw))
                got += raw.size
                if self._failure is not None or self.state == SensorState.STARTING:
                    self._recovered(fe.where)
                elif (
                    self._backoff.failing
                    and self.clock.monotonic() - started > self.opts.healthy_after_s
                ):
                    self._backoff.reset()
            self._hand_over(_Chunk(dwell_id, tuning, t0_mono, t0_wall, got // 2, None), True)

    def _survey(self, fe: Frontend) -> None:
        """Listen to each paired downlink; weight the uplinks of the cells heard."""
        rate = self.opts.rate
        settle = 2 * max(1, round((self.opts.sweep.settle_s + fe.retune_latency_s) * rate))
        n_bytes = 2 * max(1024, round(self.opts.survey_dwell_s * rate))
        carriers: list[float] = []
        powers: dict[Tuning, float] = {}
        for tuning in downlink_tunings(self.plan, rate):
            if self.stopping:
                return
            try:
                fe.set_center_freq(tuning.centre_hz)
            except CaptureError as exc:
                if exc.failure is not TUNE:
                    raise
                continue
            fe.discard_buffered()
            fe.read(settle)
            # Two looks in a row: a carrier counts only when both see it, so samples still
            # buffered from the previous tuning (rtl_tcp under load) cannot invent one.
            first = mean_spectrum(fe.read(n_bytes))
            second = mean_spectrum(fe.read(n_bytes))
            self._last_read_mono = self.clock.monotonic()
            powers[tuning] = float(second.sum())
            seen = find_carriers(first, tuning.centre_hz, rate)
            bin_hz = rate / first.size
            carriers += [
                c
                for c in find_carriers(second, tuning.centre_hz, rate)
                if any(abs(c - s) <= 1.5 * bin_hz for s in seen)
            ]
        cells = carriers + occupied_downlinks(powers)
        with self._lock:
            marked = self.scheduler.mark_downlink_carriers(self.plan, cells)
        self._local_cells = sorted(round(c / 1e6, 3) for c in cells)
        self._last_survey = self.clock.monotonic()
        self.counters["surveys"] += 1
        _LOGGER.info(
            "downlink survey: %d local cell(s), %d uplink tuning(s) weighted", len(cells), marked
        )

    def _hand_over(self, chunk: _Chunk, must: bool = False) -> None:
        try:
            if must:
                # End-of-dwell markers are tiny; wait briefly rather than lose the boundary.
                self._queue.put(chunk, timeout=1.0)
            else:
                self._queue.put_nowait(chunk)
        except queue.Full:
            self.counters["dropped_queue_full"] += 1

    def _recovered(self, where: str) -> None:
        if self._failure is not None:
            self.counters["recoveries"] += 1
            _LOGGER.info("SDR capture recovered on %s", where)
        self._failure = None
        self._retry_in = None
        self.set_state(SensorState.OK, f"capturing via {where}")

    def _on_failure(self, exc: CaptureError) -> None:
        """Report (state + advice, once per class at warning), then back off by class."""
        failure = exc.failure
        self.counters[f"fail_{failure.name}"] += 1
        if self.state == SensorState.OK or self._failure is not None:
            self.counters["reconnects"] += 1
        # Every class has a schedule: the capture loop retries everything.
        delay = self._backoff.failed(failure) or failure.retry.max_s
        if self._failure is not failure:
            self.set_state(failure.state, str(exc))
        else:
            _LOGGER.debug(
                "SDR retry %d (%s): %s", self._backoff.failures(failure), failure.name, exc
            )
        self._failure = failure
        self._retry_in = delay
        self._stop.wait(delay)

    # -- dsp thread ------------------------------------------------------------------------
    def _dsp_main(self) -> None:
        det = self.detector
        current = -1
        dwell_bursts = 0
        expected = 0
        while not self.stopping:
            try:
                chunk = self._queue.get(timeout=0.2)
            except queue.Empty:
                self._tick()
                continue
            rate = self.opts.rate
            if chunk.dwell != current:
                det.begin_dwell(chunk.tuning.centre_hz, chunk.t0_mono + chunk.offset / rate)
                current = chunk.dwell
                dwell_bursts = 0
                expected = chunk.offset
                if self._recorder is not None:
                    self._recorder.begin_segment(
                        chunk.t0_wall + chunk.offset / rate, chunk.tuning.centre_hz
                    )
            elif chunk.offset != expected:
                # Chunks were dropped (queue full): restart the dwell at the right time so
                # burst times stay true, rather than splice samples that are not adjacent.
                dwell_bursts += self._emit(det.end_dwell(), chunk)
                det.begin_dwell(chunk.tuning.centre_hz, chunk.t0_mono + chunk.offset / rate)
                if self._recorder is not None:
                    self._recorder.begin_segment(
                        chunk.t0_wall + chunk.offset / rate, chunk.tuning.centre_hz
                    )
            if chunk.raw is not None:
                expected = chunk.offset + chunk.raw.size // 2
            if chunk.raw is None:
                bursts = det.end_dwell()
                dwell_bursts += self._emit(bursts, chunk)
                with self._lock:
                    self.scheduler.report(chunk.tuning, dwell_bursts, self.opts.sweep.dwell_s)
                self.counters["dwells"] += 1
                current = -1
                self._tick()
                continue
            # The silence watchdog listens for IQ, not bursts: no handset at night is normal.
            self._last_delivery_mono = self.clock.monotonic()
            if self._recorder is not None:
                self._recorder.write(chunk.raw)
            self._remember(chunk)
            dwell_bursts += self._emit(det.feed(chunk.raw, "cu8"), chunk)
            self.counters["samples"] += chunk.raw.size // 2
            new_gain = self.gain.update(
                det.stats.last_clip_fraction, det.stats.noise_floor_dbfs, self.clock.monotonic()
            )
            if self.gain.overloaded:
                self.counters["overload_chunks"] += 1
            if new_gain is not None:
                with self._lock:
                    self._gain_request = new_gain
                det.reset_floors()
                self.counters["gain_changes"] += 1
            self._tick()

    def _emit(self, bursts: list[Burst], chunk: _Chunk) -> int:
        for b in bursts:
            rec = to_record(b, self.plan, self.gain.gain_db)
            if rec.band is None:
                self._other_emitter(b)
                continue
            # Detector times are monotonic (the dwell began at t0_mono); the wall clock is
            # attached at the edge.
            shift = chunk.t0_wall - chunk.t0_mono
            rec = replace(rec, ts=b.t_start + shift, t_end=b.t_end + shift,
                          sensor=self.opts.sensor)  # fmt: skip
            pair = self._iq_window(rec, chunk)
            if pair is not None:
                rec = replace(rec, iq_meta=pair[0], iq=pair[1])
            self.counters["bursts"] += 1
            if self._recorder is not None:
                self._recorder.annotate(b)
            self.deliver(rec)
        return len(bursts)

    def _other_emitter(self, b: Burst) -> None:
        """A burst outside every uplink band of the plan: counted and logged, never delivered.

        A dwell spans 0.8 of the sample rate, so its edges reach past an uplink band into
        guard bands, downlinks or ISM bands, where meters, alarms and base stations transmit.
        """
        self.counters["other_emitter"] += 1
        self._last_other_mhz = round(b.freq_hz / 1e6, 4)
        now = self.clock.monotonic()
        if now - self._other_logged >= self.opts.status_every_s:
            self._other_logged = now
            _LOGGER.info(
                "other emitter at %.4f MHz (%s, %.0f us, %.0f dB SNR): outside the %s uplink "
                "bands, not a handset (%d so far)",
                b.freq_hz / 1e6, b.shape, b.duration_s * 1e6, b.snr_db,
                self.plan.region or "configured", self.counters["other_emitter"],
            )  # fmt: skip

    def _tick(self) -> None:
        now = self.clock.monotonic()
        last = self._last_read_mono
        limit = 2 * self.opts.stall_s + self.opts.sweep.dwell_s
        if self.state == SensorState.OK and last is not None and now - last > limit:
            # A read that never returns (a wedged USB transfer has no timeout in librtlsdr's
            # sync API). The thread cannot be interrupted safely; say so, and let the unit's
            # watchdog restart the daemon if it does not come back.
            self._failure = STALL
            self.counters["hung_reads"] += 1
            self.set_state(
                SensorState.FAULT,
                f"{self.frontend.where}: no IQ for {now - last:.0f} s (the read hangs): "
                "unplug and replug the dongle",
            )
        if now - self._last_status >= self.opts.status_every_s:
            self._last_status = now
            self.check_silence()
            self._sink(self.status())

    # -- evidence --------------------------------------------------------------------------
    def _remember(self, chunk: _Chunk) -> None:
        keep = int(self.opts.snippet_keep_s * self.opts.rate)
        self._ring.append(chunk)
        self._ring_samples += chunk.raw.size // 2 if chunk.raw is not None else 0
        while self._ring and self._ring_samples - self._ring_len(self._ring[0]) >= keep:
            self._ring_samples -= self._ring_len(self._ring.popleft())

    @staticmethod
    def _ring_len(c: _Chunk) -> int:
        return 0 if c.raw is None else c.raw.size // 2

    def _iq_window(self, rec: SdrBurst, chunk: _Chunk) -> tuple[bytes, bytes] | None:
        """The SigMF pair of the IQ around ``rec`` from the ring: the few chunks of its dwell
        that overlap it (a window is milliseconds; the ring holds ``snippet_keep_s``)."""
        rate = self.opts.rate
        lo, hi = rec.ts - IQ_MARGIN_S, rec.t_end + IQ_MARGIN_S
        mine: list[tuple[float, npt.NDArray[np.uint8]]] = []
        for c in list(self._ring):
            if c.dwell != chunk.dwell or c.raw is None:
                continue
            start = c.t0_wall + c.offset / rate
            if start + c.raw.size // 2 / rate >= lo and start <= hi:
                mine.append((start, c.raw))
        if not mine:
            self.counters["iq_window_missed"] += 1
            return None
        raw = mine[0][1] if len(mine) == 1 else np.concatenate([r for _, r in mine])
        return window_pair(raw, "cu8", rate, chunk.tuning.centre_hz, mine[0][0], rec)

    def save_snippet(self, mono_start: float, mono_end: float, out_dir: str | Path,
                     name: str, margin_s: float = 0.002) -> Path | None:  # fmt: skip
        """Write the IQ around a burst (by its monotonic times) as SigMF; None if gone."""
        chunks = [c for c in list(self._ring) if c.raw is not None]
        for dwell in sorted({c.dwell for c in chunks}):
            mine = [c for c in chunks if c.dwell == dwell]
            first = mine[0]
            start = first.t0_mono + first.offset / self.opts.rate
            end = mine[-1].t0_mono + (mine[-1].offset + self._ring_len(mine[-1])) / self.opts.rate
            if not start <= mono_start < end:
                continue
            raw = np.concatenate([c.raw for c in mine if c.raw is not None])
            burst = Burst(mono_start, mono_end, first.tuning.centre_hz, 200e3, 0.0, 0.0,
                          first.tuning.centre_hz, 0, 1, 1)  # fmt: skip
            shift = first.t0_wall - first.t0_mono
            path = save_snippet(out_dir, name, raw, self.opts.rate, first.tuning.centre_hz,
                                start, burst, margin_s)  # fmt: skip
            # Times inside the snippet are monotonic; record the wall time it corresponds to.
            _LOGGER.debug("snippet %s starts at wall %.3f", path, start + shift)
            return path
        return None

    # -- health ----------------------------------------------------------------------------
    def health_detail(self) -> dict[str, object]:
        detail = super().health_detail()
        floor = self.detector.stats.noise_floor_dbfs
        detail.update(
            {
                "transport": self.opts.transport,
                "where": self.frontend.where,
                "tuning_mhz": None if self._tuning is None else self._tuning.centre_hz / 1e6,
                "noise_floor_dbfs": None if floor is None else round(floor, 1),
                "gain_db": self.gain.gain_db,
                "gain_mode": "fixed" if self.opts.gain_db is not None else "auto",
                "overload": self.gain.overloaded,
                "clip_fraction": round(self.detector.stats.last_clip_fraction, 5),
                "reconnects": self.counters["reconnects"],
                "failure": None if self._failure is None else self._failure.name,
                "retry_in_s": None if self._retry_in is None else round(self._retry_in, 2),
                "queue": self._queue.qsize(),
                "dropped_channels": self.scheduler.dropped(),
                "local_cells_mhz": self._local_cells,
                "region": self.plan.region,
                "uplink_bands": [g.label for g in self.plan.groups()],
                "other_emitters": self.counters["other_emitter"],
                "last_other_emitter_mhz": self._last_other_mhz,
            }
        )
        return detail

    def distance_m(self, power_dbfs: float) -> float:
        """Nearness guess for a burst's power at the current gain."""
        return estimate_distance_m(power_dbfs, self.gain.gain_db, self.opts.calibration)


def build_source(section: dict[str, Any], sink: Sink, clock: Clock = SYSTEM_CLOCK) -> SdrSource:
    """The SDR source from the config's ``[sdr]`` table (ValueError on bad config)."""
    return SdrSource(SdrOptions.from_mapping(section), sink, clock)
