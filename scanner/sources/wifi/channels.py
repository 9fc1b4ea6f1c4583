"""The channel plan: which channels to listen on, for how long each, parsed once.

Phones probe on every channel but not at once; a sensor with one radio hops. Channels 1, 6 and
11 carry nearly all 2.4 GHz probing (phones send on each, and these are the non-overlapping
ones), so the default plan visits only those, with weights that give the dwell times. 5 GHz
channels are optional: phones probe there too, but a Pi's adapter usually hears them worse.

A plan entry is written ``"6"`` (weight 1) or ``"6:2"`` (weight 2: twice the dwell).
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.sources.wifi.constants import CHANNEL_FREQ_MHZ
from scanner.sources.wifi.errors import ChannelPlanError

DEFAULT_PLAN = ("1:2", "6:2", "11:2")
DEFAULT_5GHZ = ("36", "40", "44", "48", "149", "153", "157", "161")


@dataclass(frozen=True, slots=True)
class PlannedChannel:
    """One channel of the plan and how long to stay on it per visit."""

    channel: int
    freq_mhz: int
    dwell_s: float


def parse_plan(entries: tuple[str, ...] | list[str], dwell_ms: float) -> tuple[PlannedChannel, ...]:
    """Turn ``["1:2", "6", ...]`` and the base dwell into planned channels, in order."""
    if dwell_ms <= 0:
        raise ChannelPlanError(f"dwell_ms must be positive, got {dwell_ms}")
    plan: list[PlannedChannel] = []
    seen: set[int] = set()
    for raw in entries:
        text = str(raw).strip()
        chan_text, _, weight_text = text.partition(":")
        try:
            channel = int(chan_text)
            weight = float(weight_text) if weight_text else 1.0
        except ValueError as exc:
            raise ChannelPlanError(f"channel plan entry {text!r}: expected N or N:WEIGHT") from exc
        if channel not in CHANNEL_FREQ_MHZ:
            raise ChannelPlanError(f"channel plan entry {text!r}: unknown channel {channel}")
        if weight <= 0:
            raise ChannelPlanError(f"channel plan entry {text!r}: weight must be positive")
        if channel in seen:
            raise ChannelPlanError(f"channel plan entry {text!r}: channel listed twice")
        seen.add(channel)
        plan.append(PlannedChannel(channel, CHANNEL_FREQ_MHZ[channel], dwell_ms * weight / 1000))
    if not plan:
        raise ChannelPlanError("channel plan is empty")
    return tuple(plan)
