"""Scenario replay: every recording of a scenario directory, merged by time, as one source.

A scenario (FORMATS.md) holds ``wifi.pcap``, ``ble.jsonl`` and ``sdr/*.sigmf-meta``. Each is
read by its radio's own replay reader (the same parsers live capture uses after the socket);
the per-radio streams are merged in timestamp order with a heap. ``iter_scenario`` yields the
merged records for ``checkpoint replay --fast``; ``ScenarioReplay`` is the threaded source the
demo runs at real-time pace, looping forever with each loop shifted by the scenario's length.
"""

from __future__ import annotations

import dataclasses
import heapq
import importlib
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from scanner import safe_json
from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.errors import RecordingError
from scanner.observations import Radio, SdrBurst, SensorState, SensorStatus, SourceEvent
from scanner.sources.base import Sink, Source, SourceOptions

if TYPE_CHECKING:
    from scanner.sources.sdr.iq_window import RecordingIq

_LOGGER = logging.getLogger(__name__)

# How often real-time replay reports each radio's health.
STATUS_EVERY_S = 10.0
# Longest single wait while pacing, so stop() is honoured promptly.
MAX_WAIT_S = 0.5


def scenario_files(directory: str | Path) -> dict[Radio, list[Path]]:
    """The recordings present in a scenario directory, per radio (one sensor's layout)."""
    d = Path(directory)
    if not d.is_dir():
        raise RecordingError(f"{d} is not a scenario directory")
    found: dict[Radio, list[Path]] = {}
    for name in ("wifi.pcap", "wifi.pcapng"):
        if (d / name).is_file():
            found.setdefault(Radio.WIFI, []).append(d / name)
    if (d / "ble.jsonl").is_file():
        found[Radio.BLE] = [d / "ble.jsonl"]
    sdr = sorted((d / "sdr").glob("*.sigmf-meta")) if (d / "sdr").is_dir() else []
    if sdr:
        found[Radio.SDR] = sdr
    return found


def scenario_duration(directory: str | Path) -> float | None:
    """``duration_s`` from truth.json, when the scenario has one."""
    path = Path(directory) / "truth.json"
    try:
        return float(safe_json.load_path(path)["duration_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _reader(radio: Radio, path: Path, counters: Counter[str]) -> Iterator[SourceEvent]:
    """The radio's own replay reader; a radio whose reader is not installed is skipped."""
    module_name, func = {
        Radio.WIFI: ("scanner.sources.wifi.replay", "read_frames"),
        Radio.BLE: ("scanner.sources.ble.replay", "read_jsonl"),
        Radio.SDR: ("scanner.sources.sdr.replay", "read_bursts"),
    }[radio]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        _LOGGER.warning("no %s replay reader installed; %s skipped", radio, path.name)
        counters[f"{radio}_reader_missing"] += 1
        return iter(())
    records: Iterator[SourceEvent] = getattr(module, func)(path, counters)
    return records


def scenario_sensors(
    directory: str | Path, only: frozenset[str] | None = None
) -> list[tuple[str | None, Path]]:
    """The sensors of a scenario: ``(None, dir)`` for the one-sensor layout (records keep their
    radio's name), plus ``(NAME, dir/sensors/NAME)`` for each sensor of a several-sensor one
    (only those named in ``only``, when given: the others' folders are ignored)."""
    d = Path(directory)
    scenario_files(d)  # a clear error for a path that is not a directory
    out: list[tuple[str | None, Path]] = [(None, d)]
    sensors = d / "sensors"
    if sensors.is_dir():
        out.extend(
            (p.name, p)
            for p in sorted(sensors.iterdir())
            if p.is_dir() and (only is None or p.name in only)
        )
    return out


def iter_scenario(
    directory: str | Path,
    counters: Counter[str] | None = None,
    clock_offsets_s: dict[str, float] | None = None,
    only: frozenset[str] | None = None,
) -> Iterator[SourceEvent]:
    """Every observation of the scenario in timestamp order (``mono == ts``).

    In a several-sensor scenario each sensor's records carry the sensor's name, and a known
    clock offset of a sensor (``clock_offsets_s``, seconds to add) is applied to them; ``only``
    keeps the named sensors' records.
    Raises ``RecordingError`` when the directory or one of its recordings cannot be read.
    """
    counts = counters if counters is not None else Counter()
    offsets = clock_offsets_s or {}
    streams: list[Iterator[SourceEvent]] = []
    for sensor, where in scenario_sensors(directory, only):
        for radio, paths in scenario_files(where).items():
            for path in paths:
                records = _counted(_reader(radio, path, counts), counts, str(radio))
                if sensor is not None:
                    records = _as_sensor(records, sensor, offsets.get(sensor, 0.0))
                streams.append(records)
    return heapq.merge(*streams, key=lambda e: e.ts)


def _as_sensor(
    records: Iterator[SourceEvent], sensor: str, offset_s: float
) -> Iterator[SourceEvent]:
    for rec in records:
        moved = shifted(rec, offset_s, offset_s) if offset_s else rec
        yield dataclasses.replace(moved, sensor=sensor)


def _counted(
    records: Iterator[SourceEvent], counters: Counter[str], radio: str
) -> Iterator[SourceEvent]:
    for rec in records:
        counters[f"{radio}_records"] += 1
        yield rec


def shifted(event: SourceEvent, dts: float, dmono: float) -> SourceEvent:
    """The same record moved in time (a later loop, or onto the live clocks)."""
    if isinstance(event, SdrBurst):
        return dataclasses.replace(
            event, ts=event.ts + dts, mono=event.mono + dmono, t_end=event.t_end + dts
        )
    return dataclasses.replace(event, ts=event.ts + dts, mono=event.mono + dmono)


def statuses(
    directory: str | Path,
    ts: float,
    mono: float,
    state: SensorState,
    counters: Counter[str],
    only: frozenset[str] | None = None,
) -> list[SensorStatus]:
    """One health report per sensor and radio present in the scenario."""
    return [
        SensorStatus(
            ts=ts,
            mono=mono,
            sensor=sensor or str(radio),
            radio=radio,
            state=state,
            message="replay" if state == SensorState.OK else f"replay {state}",
            counters={k: v for k, v in counters.items() if k.startswith(str(radio))},
            detail={"replay": str(directory)},
        )
        for sensor, where in scenario_sensors(directory, only)
        for radio in scenario_files(where)
    ]


def scenario_iq(directory: str | Path) -> RecordingIq | None:
    """The IQ windows of a scenario's SDR recordings; None without any (or without numpy)."""
    paths: list[Path] = []
    for _sensor, where in scenario_sensors(directory):
        paths.extend(scenario_files(where).get(Radio.SDR, ()))
    if not paths:
        return None
    try:
        from scanner.sources.sdr.iq_window import RecordingIq
    except ImportError:
        _LOGGER.warning("numpy is not installed: no IQ evidence from %s", directory)
        return None
    return RecordingIq(paths)


class ScenarioReplay(Source):
    """A scenario directory replayed as a live source: paced, optionally looping."""

    radio = Radio.WIFI  # the health strip shows each radio's own status records

    def __init__(
        self,
        directory: str | Path,
        sink: Sink,
        clock: Clock = SYSTEM_CLOCK,
        *,
        realtime: bool = True,
        loop: bool = False,
        speed: float = 1.0,
        options: SourceOptions | None = None,
    ) -> None:
        super().__init__(options or SourceOptions(sensor="replay"), sink, clock)
        self.directory = Path(directory)
        if not scenario_files(self.directory):
            raise RecordingError(
                f"{self.directory} holds no wifi.pcap, ble.jsonl or sdr/ recording"
            )
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.realtime = realtime
        self.loop = loop
        self.speed = speed
        self.loops = 0
        self._thread: threading.Thread | None = None
        # A paced replay moves every record to today's time, where the core's evidence keeper
        # can no longer find a burst in the recording: the replay cuts each burst's IQ window
        # itself and sends it with the burst, as the live SDR capture does from its ring.
        self._iq = scenario_iq(self.directory) if realtime else None

    def start(self) -> None:
        self.set_state(SensorState.STARTING)
        self._thread = threading.Thread(target=self._run, name="scenario-replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        super().stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(self) -> None:
        try:
            self._replay()
        except RecordingError as exc:
            self.set_state(SensorState.FAULT, f"cannot replay {self.directory}: {exc}")
            return
        except Exception as exc:
            _LOGGER.exception("replay of %s failed", self.directory)
            self.set_state(SensorState.FAULT, f"replay failed: {exc}")
            return
        if not self.stopping:
            self.set_state(SensorState.STOPPED, "end of recording")

    def _replay(self) -> None:
        period = scenario_duration(self.directory)
        wall0 = self.clock.wall()
        mono0 = self.clock.monotonic()
        first_ts: float | None = None
        offset = 0.0
        self.set_state(SensorState.OK)
        last_status = float("-inf")
        while not self.stopping:
            last_ts: float | None = None
            for event in iter_scenario(self.directory, self.counters):
                if self.stopping:
                    return
                if first_ts is None:
                    first_ts = event.ts
                last_ts = event.ts
                rel = event.ts + offset - first_ts
                if self.realtime:
                    self._wait_until(mono0 + rel / self.speed)
                    out = shifted(
                        event,
                        wall0 + rel / self.speed - event.ts,
                        mono0 + rel / self.speed - event.mono,
                    )
                    if self._iq is not None and isinstance(event, SdrBurst) and not event.iq:
                        out = self._with_iq(event, out)
                else:
                    out = shifted(event, offset, offset) if offset else event
                now = out.mono
                if now - last_status >= STATUS_EVERY_S:
                    last_status = now
                    for status in statuses(
                        self.directory, out.ts, now, SensorState.OK, self.counters
                    ):
                        self._sink(status)
                self.deliver(out)
            self.loops += 1
            if not self.loop or first_ts is None or last_ts is None:
                return
            # The next loop starts one scenario length later (or just after the last record).
            offset += period if period is not None else (last_ts - first_ts + 1.0)

    def _with_iq(self, recorded: SdrBurst, out: SourceEvent) -> SourceEvent:
        if self._iq is None or not isinstance(out, SdrBurst):
            return out
        pair = self._iq.window(recorded, out.ts - recorded.ts)
        if pair is None:
            self.counters["sdr_no_iq"] += 1
            return out
        self.counters["sdr_iq"] += 1
        return dataclasses.replace(out, iq_meta=pair[0], iq=pair[1])

    def _wait_until(self, target_mono: float) -> None:
        while not self.stopping:
            delay = target_mono - self.clock.monotonic()
            if delay <= 0:
                return
            self._stop.wait(min(delay, MAX_WAIT_S))
