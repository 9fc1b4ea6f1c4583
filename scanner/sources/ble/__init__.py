"""BLE: capture (bleak over BlueZ), replay and import of recordings, and classification.

Where an advertisement enters: ``live.BleSource`` (bleak's detection callback) or a recording
(``replay.read_recording``: ``ble.jsonl`` and other tools' captures). What it is:
``classify.classify``. Written down by ``recorder.JsonlRecorder``.
Importing this package loads neither bleak nor dbus-fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scanner.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from scanner.sources.base import Sink
    from scanner.sources.ble.live import BleSource


def build_source(
    section: Mapping[str, Any],
    sink: Sink,
    clock: Clock = SYSTEM_CLOCK,
    record_path: str | None = None,
) -> BleSource:
    """The live BLE source for a ``[ble]`` config section (see ``options.BleOptions``)."""
    from scanner.sources.ble.live import build_source as build

    return build(section, sink, clock, record_path=record_path)
