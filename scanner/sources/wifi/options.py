"""Options of the live Wi-Fi source, from the config's ``[wifi]`` section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scanner.sources.base import SourceOptions
from scanner.sources.wifi.channels import DEFAULT_5GHZ, DEFAULT_PLAN, PlannedChannel, parse_plan
from scanner.sources.wifi.constants import BPF_FILTER

DEFAULT_INTERFACE = "wlan1"
DEFAULT_DWELL_MS = 250.0
DEFAULT_QUEUE_SIZE = 4096
DEFAULT_STATUS_INTERVAL_S = 30.0

_KEYS = frozenset(
    {
        "sensor",
        "interface",
        "channels",
        "include_5ghz",
        "dwell_ms",
        "bpf",
        "queue_size",
        "setup_monitor",
        "hop",
        "silence_after_s",
        "record_path",
        "status_interval_s",
    }
)


@dataclass(frozen=True, slots=True)
class WifiOptions(SourceOptions):
    """Typed ``[wifi]`` options; ``from_mapping`` validates the section."""

    sensor: str = "wifi"
    interface: str = DEFAULT_INTERFACE
    # Plan entries "N" or "N:WEIGHT"; the dwell on a channel is dwell_ms x its weight.
    channels: tuple[str, ...] = DEFAULT_PLAN
    include_5ghz: bool = False
    # 250 ms: a phone's probe burst on one channel lasts ~20-100 ms, so a visit catches it;
    # a full 1/6/11 cycle at weight 2 takes 1.5 s, well inside a phone's scan repetition.
    dwell_ms: float = DEFAULT_DWELL_MS
    bpf: str = BPF_FILTER
    # Frames waiting for the core; at ~1,000 frames/s in a crowd this is 4 s of slack.
    queue_size: int = DEFAULT_QUEUE_SIZE
    setup_monitor: bool = True
    hop: bool = True
    record_path: str | None = None
    status_interval_s: float = DEFAULT_STATUS_INTERVAL_S

    @property
    def plan(self) -> tuple[PlannedChannel, ...]:
        """The parsed channel plan (5 GHz channels appended when enabled)."""
        entries = list(self.channels)
        if self.include_5ghz:
            entries += [c for c in DEFAULT_5GHZ if c not in {e.split(":")[0] for e in entries}]
        return parse_plan(entries, self.dwell_ms)

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> WifiOptions:
        """Options from ``[wifi]``; unknown keys and bad values raise ``ValueError``."""
        unknown = sorted(set(section) - _KEYS - {"enabled"})
        if unknown:
            raise ValueError(f"[wifi]: unknown option(s) {', '.join(unknown)}")
        interface = str(section.get("interface", DEFAULT_INTERFACE))
        if not interface or "/" in interface or len(interface) > 15:
            raise ValueError(f"[wifi] interface: {interface!r} is not an interface name")
        raw_channels = section.get("channels", list(DEFAULT_PLAN))
        if not isinstance(raw_channels, list | tuple):
            raise ValueError('[wifi] channels: expected a list such as ["1:2", "6:2", "11:2"]')
        queue_size = int(section.get("queue_size", DEFAULT_QUEUE_SIZE))
        if queue_size < 1:
            raise ValueError("[wifi] queue_size must be at least 1")
        options = cls(
            sensor=str(section.get("sensor", "wifi")),
            silence_after_s=float(section.get("silence_after_s", 90.0)),
            interface=interface,
            channels=tuple(str(c) for c in raw_channels),
            include_5ghz=bool(section.get("include_5ghz", False)),
            dwell_ms=float(section.get("dwell_ms", DEFAULT_DWELL_MS)),
            bpf=str(section.get("bpf", BPF_FILTER)),
            queue_size=queue_size,
            setup_monitor=bool(section.get("setup_monitor", True)),
            hop=bool(section.get("hop", True)),
            record_path=section.get("record_path"),
            status_interval_s=float(section.get("status_interval_s", DEFAULT_STATUS_INTERVAL_S)),
        )
        options.plan  # noqa: B018 - parse now so a bad plan is a config error, not a fault
        return options
