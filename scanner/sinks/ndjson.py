"""The alert lines of FORMATS.md (``replay --alerts``, ``eval``) and the handset counts
(``replay --counts``), as sinks of the core's events."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import IO, Any

from scanner.core.events import AlertUpdated, CoreEvent, HandsetMinute
from scanner.sinks.alert_view import ALERT_TRANSITIONS, alert_fields

Line = dict[str, Any]


def line_of(event: CoreEvent) -> Line | None:
    """The alert line of an event, or None for an event that has no line."""
    if not isinstance(event, ALERT_TRANSITIONS):
        return None
    # A line when a transmitter entered or a radio joined (FORMATS.md: the alert gained a
    # handset or a sensor); new evidence on what is already named changes the card only.
    if isinstance(event, AlertUpdated) and not (event.gained or event.new_sensor):
        return None
    line = alert_fields(event)
    line["ts"] = round(line["ts"], 3)
    return line


class NdjsonSink:
    """Hands each alert line to ``write`` (a list's ``append``, or a file writer)."""

    def __init__(self, write: Callable[[Line], None]) -> None:
        self._write = write

    @classmethod
    def to_file(cls, out: IO[str]) -> NdjsonSink:
        """Lines written to ``out`` as NDJSON, flushed line by line (a reader may tail it)."""

        def write(line: Line) -> None:
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            out.flush()

        return cls(write)

    def handle(self, events: Sequence[CoreEvent]) -> None:
        for event in events:
            line = line_of(event)
            if line is not None:
                self._write(line)


class CountsSink:
    """FORMATS.md handset counts: one line per minute, ``{"ts", "in_zone", "heard"}``."""

    def __init__(self, write: Callable[[Line], None]) -> None:
        self._write = write

    @classmethod
    def to_file(cls, out: IO[str]) -> CountsSink:
        def write(line: Line) -> None:
            out.write(json.dumps(line, separators=(",", ":")) + "\n")

        return cls(write)

    def handle(self, events: Sequence[CoreEvent]) -> None:
        for event in events:
            if isinstance(event, HandsetMinute):
                self._write({"ts": event.ts, "in_zone": event.in_zone, "heard": event.heard})
