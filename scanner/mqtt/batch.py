"""The wire form of a sensor node's batch of records, and the node's clock as it travels with it.

A batch is one JSON object::

    {"v": 1, "node": "inside", "stream": "wifi", "seq": 42, "sent": 1764000000.5,
     "clock": {"synced": true, "source": "chrony", "offset_s": -0.0012},
     "records": [<one transport-codec record each>]}

``node`` is the sensor node's name (the topic level the broker lets it publish under); ``stream``
tells the publishers of one node apart (one per capture daemon, or ``node`` for ``checkpoint
node``), since each numbers its batches itself; ``seq`` grows by one per batch of a stream and
survives restarts, so the core drops a batch it already has (a QoS 1 re-send) by
``(node, stream, seq)``. ``clock.offset_s`` is what to add to the node's timestamps to get true
UTC. Records are the Unix-socket transport's records (``codec``), so both transports carry the
same fields checked the same way.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner import safe_json
from scanner.observations import SourceEvent
from scanner.runtime.transport.codec import FrameError, decode_event

_LOGGER = logging.getLogger(__name__)

BATCH_VERSION = 1
# A Pi's timesyncd or chrony keeps the clock within milliseconds; a node whose clock is off by more
# than a day is not "offset", it is unset (no RTC, no network), and no correction can be trusted.
MAX_OFFSET_S = 86_400.0
# systemd-timesyncd touches this file once it has synchronised the clock (systemd >= 239).
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
# chronyc answers at once from the local daemon; a hung one must not stall a health report.
CHRONYC_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class ClockSync:
    """A node's clock: whether a time service has set it, who says so, and the known offset."""

    synced: bool
    source: str  # "chrony", "timesyncd", "config" or "none"
    offset_s: float = 0.0  # seconds to add to the node's timestamps for true UTC

    def as_json(self) -> dict[str, Any]:
        return {"synced": self.synced, "source": self.source, "offset_s": self.offset_s}


UNSYNCED = ClockSync(False, "none", 0.0)


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch as the core receives it."""

    node: str
    stream: str
    seq: int
    sent: float
    clock: ClockSync
    records: tuple[SourceEvent, ...]
    # Records in the batch that did not decode (counted by the core, never handled).
    malformed: int = 0


def encode_batch(
    node: str, stream: str, seq: int, sent: float, clock: ClockSync, records: Sequence[bytes]
) -> bytes:
    """A batch of already encoded records (``codec.encode_line``) as the bytes of one message."""
    head = json.dumps(
        {
            "v": BATCH_VERSION,
            "node": node,
            "stream": stream,
            "seq": seq,
            "sent": sent,
            "clock": clock.as_json(),
        },
        separators=(",", ":"),
        allow_nan=False,
    )
    # The records are spliced in as they were encoded on the capture thread, not encoded again.
    return head[:-1].encode() + b',"records":[' + b",".join(records) + b"]}"


def decode_batch(payload: bytes) -> Batch:
    """A message back into its batch; ``FrameError`` names what is wrong with it.

    A record that does not decode is counted in ``malformed`` and skipped: one bad record must
    not cost the rest of the batch.
    """
    try:
        obj = safe_json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError(f"batch is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise FrameError("batch is not a JSON object")
    if obj.get("v") != BATCH_VERSION:
        raise FrameError(f"unsupported batch version {obj.get('v')!r}")
    node, stream, seq, sent = obj.get("node"), obj.get("stream"), obj.get("seq"), obj.get("sent")
    if not isinstance(node, str) or not node or not isinstance(stream, str) or not stream:
        raise FrameError("batch 'node' and 'stream' must be names")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise FrameError("batch 'seq' must be a non-negative integer")
    if isinstance(sent, bool) or not isinstance(sent, int | float) or not math.isfinite(sent):
        raise FrameError("batch 'sent' must be a finite number")
    clock = _decode_clock(obj.get("clock"))
    raw = obj.get("records")
    if not isinstance(raw, list):
        raise FrameError("batch 'records' must be a list")
    records: list[SourceEvent] = []
    malformed = 0
    for item in raw:
        try:
            records.append(decode_event(item))
        except FrameError:
            malformed += 1
    return Batch(node, stream, seq, float(sent), clock, tuple(records), malformed)


def _decode_clock(value: Any) -> ClockSync:
    if not isinstance(value, dict):
        raise FrameError("batch 'clock' must be an object")
    synced, source, offset = value.get("synced"), value.get("source"), value.get("offset_s")
    if not isinstance(synced, bool) or not isinstance(source, str):
        raise FrameError("batch 'clock' needs 'synced' (true/false) and 'source'")
    if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
        raise FrameError("batch 'clock.offset_s' must be a finite number")
    if abs(offset) > MAX_OFFSET_S:
        raise FrameError(f"batch 'clock.offset_s' {offset} is more than a day")
    return ClockSync(synced, source, float(offset))


# -- the node's clock -----------------------------------------------------------------------------


def read_clock_sync(configured_offset_s: float | None = None) -> ClockSync:
    """This machine's clock state, from the installer's config, chrony or systemd-timesyncd.

    A ``clock_offset_s`` in the node's ``[[sensors]]`` entry wins: the installer measured it
    for a node that no time service reaches. Otherwise chrony reports its remaining correction
    (``chronyc -c tracking``), and timesyncd only whether it has synchronised (it slews the
    clock to within milliseconds, which is no offset worth correcting).
    """
    if configured_offset_s is not None:
        return ClockSync(True, "config", configured_offset_s)
    chrony = _chrony()
    if chrony is not None:
        return chrony
    if TIMESYNCD_FLAG.exists():
        return ClockSync(True, "timesyncd", 0.0)
    return UNSYNCED


def _chrony() -> ClockSync | None:
    exe = shutil.which("chronyc")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "-c", "tracking"],
            capture_output=True,
            text=True,
            timeout=CHRONYC_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _LOGGER.debug("chronyc tracking failed: %s", exc)
        return None
    return parse_chrony_tracking(out.stdout) if out.returncode == 0 else None


def parse_chrony_tracking(text: str) -> ClockSync | None:
    """``chronyc -c tracking`` as a clock state; None when it is not that output.

    Field 5 is the system clock's correction in seconds (positive: the clock is slow of NTP
    time, so it is what to add); the last field is the leap status, "Not synchronised" until
    chrony has a source.
    """
    fields = text.strip().split(",")
    if len(fields) < 14:
        return None
    try:
        correction = float(fields[4])
    except ValueError:
        return None
    if not math.isfinite(correction) or abs(correction) > MAX_OFFSET_S:
        return None
    synced = fields[-1].strip() != "Not synchronised"
    return ClockSync(synced, "chrony", correction if synced else 0.0)
