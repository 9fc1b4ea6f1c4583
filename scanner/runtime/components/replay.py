"""A scenario recording as a running source: the demo's radios, or a capture daemon's --replay.

The replay itself (reading, pacing in real time, looping) is ``scanner.sources.replay``; this
module only adapts it to the runtime's components.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from scanner.clock import Clock
from scanner.config import ConfigError
from scanner.observations import Radio, SensorState, SensorStatus, SourceEvent
from scanner.runtime.build import SourceHealthReporter
from scanner.runtime.components.source import SourceComponent
from scanner.runtime.supervisor import Supervisor
from scanner.sources.base import Sink, Source

RECORDINGS = ("wifi.pcap", "ble.jsonl", "sdr")


def check_scenario(scenario: Path) -> None:
    """A clear error for a directory that is not a scenario."""
    if not scenario.is_dir():
        raise ConfigError(f"scenario {scenario} is not a directory")
    if not any((scenario / name).exists() for name in RECORDINGS):
        raise ConfigError(f"scenario {scenario} has no wifi.pcap, ble.jsonl or sdr/ recording")


def build_replay(scenario: Path, sink: Sink, clock: Clock, speed: float) -> Source:
    """The looping, real-time replay of a scenario directory as a source."""
    from scanner.sources.replay import ScenarioReplay

    return ScenarioReplay(scenario, sink, clock=clock, realtime=True, loop=True, speed=speed)


def radio_view(scenario: Path, radio: str) -> Path:
    """A temporary scenario holding only one radio's recording (symlinks), plus truth.json.

    A capture daemon replays one radio; reading (and, for SDR, running the DSP over) the
    other radios' recordings only to throw them away would triple its work.
    """
    names = {"wifi": ("wifi.pcap", "wifi.pcapng"), "ble": ("ble.jsonl",), "sdr": ("sdr",)}[radio]
    present = [scenario / n for n in names if (scenario / n).exists()]
    if not present:
        raise ConfigError(f"scenario {scenario} has no {radio} recording")
    view = Path(tempfile.mkdtemp(prefix=f"checkpoint-replay-{radio}-"))
    for path in [*present, scenario / "truth.json"]:
        if path.exists():
            (view / path.name).symlink_to(path.resolve())
    return view


class ReplayComponent(SourceComponent):
    """The replay as a component. The sensors the guard sees are the recorded radios, which
    the replay reports itself; the replay driver's own state (running, looping, silent) is
    runtime health, not a sensor. Only its fault or end reaches the radios it feeds, since
    they then go quiet for that reason."""

    def __init__(
        self,
        build: Callable[[Sink], Source],
        sink: Sink,
        radios: tuple[Radio, ...],
        counters_extra: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        super().__init__("replay", build, sink, counters_extra, periodic_status=False)
        self._radios = radios

    def _send(self, event: SourceEvent) -> None:
        source = self.source
        if (
            isinstance(event, SensorStatus)
            and source is not None
            and event.sensor == source.options.sensor
        ):
            if event.state in (SensorState.FAULT, SensorState.STOPPED):
                for radio in self._radios:
                    super()._send(replace(event, sensor=str(radio), radio=radio))
            return
        super()._send(event)

    def runtime_detail(self) -> dict[str, object]:
        """The driver's own state, for runtime health."""
        source = self.source
        if source is None:
            return {}
        return {
            "state": source.state,
            "message": source.message,
            "loops": int(getattr(source, "loops", 0)),
        }


def add_replay(
    supervisor: Supervisor,
    reporter: SourceHealthReporter,
    scenario: Path,
    sink: Sink,
    clock: Clock,
    speed: float,
    counters_extra: Callable[[], dict[str, int]] | None = None,
    name: str = "replay",
) -> None:
    """Add the scenario's replay as one supervised source component named ``name``."""
    if not 0 < speed <= 1000:
        raise ConfigError(f"--speed must be between 0 and 1000, not {speed}")
    check_scenario(scenario)
    from scanner.sources.replay import scenario_files

    def make(s: Sink) -> Source:
        return build_replay(scenario, s, clock, speed)

    make(lambda _event: None)  # a scenario the replay cannot open fails now, not in a loop
    radios = tuple(scenario_files(scenario))
    for radio in radios:
        # A replay that dies faults the radios it was feeding, under their own names.
        reporter.register(name, str(radio), radio)
    supervisor.add(
        name,
        lambda: ReplayComponent(make, sink, radios, counters_extra),
        critical=False,
    )
