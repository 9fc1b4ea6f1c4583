"""IQ windows around bursts, as the SigMF pair kept as evidence of an alert.

``window_pair`` cuts the samples around one burst out of the IQ that holds it and describes them
in SigMF metadata (one capture, one annotation on the burst). ``RecordingIq`` finds that IQ in
a scenario's recordings, so a replay keeps the same evidence the live capture's ring keeps.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner.errors import RecordingError
from scanner.observations import SdrBurst
from scanner.sources.sdr.sigmf_io import SIGMF_VERSION, Dwell, iso_utc, open_recording

_LOGGER = logging.getLogger(__name__)

# IQ kept each side of a burst: 2 ms is four GSM timeslots (577 us each), enough to show the
# burst against the noise before and after it without keeping the dwell around it.
MARGIN_S = 0.002


def window_pair(
    raw: npt.NDArray[Any],
    datatype: str,
    rate: float,
    centre_hz: float,
    t0: float,
    burst: SdrBurst,
    margin_s: float = MARGIN_S,
) -> tuple[bytes, bytes] | None:
    """``(meta, data)`` of the IQ around ``burst`` in ``raw`` (interleaved scalars whose first
    sample is at wall time ``t0``); None when the burst is not inside it."""
    n = raw.size // 2
    first = max(0, math.floor((burst.ts - margin_s - t0) * rate))
    last = min(n, math.ceil((burst.t_end + margin_s - t0) * rate))
    if last <= first or burst.ts < t0 or burst.ts >= t0 + n / rate:
        return None
    data = np.ascontiguousarray(raw[2 * first : 2 * last]).tobytes()
    start = t0 + first / rate
    half_bw = burst.bandwidth_khz * 500.0
    meta = {
        "global": {
            "core:datatype": datatype,
            "core:sample_rate": float(rate),
            "core:version": SIGMF_VERSION,
            "core:recorder": "checkpoint-scanner",
            "core:description": "evidence: IQ around one uplink burst",
        },
        "captures": [
            {
                "core:sample_start": 0,
                "core:frequency": float(centre_hz),
                "core:datetime": iso_utc(start),
            }
        ],
        "annotations": [
            {
                "core:sample_start": max(0, round((burst.ts - start) * rate)),
                "core:sample_count": max(1, round((burst.t_end - burst.ts) * rate)),
                "core:freq_lower_edge": burst.freq_mhz * 1e6 - half_bw,
                "core:freq_upper_edge": burst.freq_mhz * 1e6 + half_bw,
                "core:label": f"uplink burst ({burst.band or 'off-plan'})",
                "checkpoint:power_dbfs": burst.power_dbfs,
                "checkpoint:snr_db": burst.snr_db,
            }
        ],
    }
    return (json.dumps(meta, indent=1) + "\n").encode("utf-8"), data


class RecordingIq:
    """The IQ windows of bursts replayed from recordings (their dwells opened once, lazily)."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self._paths = [Path(p) for p in paths]
        self._dwells: list[Dwell] | None = None

    def _all(self) -> list[Dwell]:
        if self._dwells is None:
            self._dwells = []
            for path in self._paths:
                try:
                    self._dwells.extend(open_recording(path))
                except RecordingError as exc:
                    _LOGGER.warning("IQ evidence: %s", exc)
        return self._dwells

    def window(self, burst: SdrBurst, shift_s: float = 0.0) -> tuple[bytes, bytes] | None:
        """The SigMF pair around ``burst`` (at its recorded time); None when no recording
        holds it. ``shift_s`` moves the window's times as a paced replay moved the burst
        (the demo replays the recording at today's time), so its SigMF dates match the
        alert's."""
        hz = burst.freq_mhz * 1e6
        moved = (
            dataclasses.replace(burst, ts=burst.ts + shift_s, t_end=burst.t_end + shift_s)
            if shift_s
            else burst
        )
        for dwell in self._all():
            if abs(hz - dwell.centre_hz) > dwell.rate / 2:
                continue
            end = dwell.t0 + dwell.n_samples / dwell.rate
            if dwell.t0 <= burst.ts < end:
                pair = window_pair(
                    dwell.raw,
                    dwell.datatype,
                    dwell.rate,
                    dwell.centre_hz,
                    dwell.t0 + shift_s,
                    moved,
                )
                if pair is not None:
                    return pair
        return None
