"""`checkpoint inspect sdr FILE`: one NDJSON line per detected burst, in file order.

Contract fields: ``t_start``, ``t_end``, ``freq_mhz``, ``bandwidth_khz``, ``power_dbfs``,
``snr_db``, ``band``; extras describe the burst's shape, whether it is an uplink burst or
another emitter (outside every uplink band of the region: a meter, a base station), the scale
its power is relative to, and where it sits in the file.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TextIO

from scanner.sources.sdr.bands import DEFAULT_REGION, BandPlan
from scanner.sources.sdr.replay import detect_dwells, to_record
from scanner.sources.sdr.sigmf_io import open_recording


def inspect_file(path: str | Path, out: TextIO, region: str = DEFAULT_REGION) -> Counter[str]:
    """Write the bursts of a recording as NDJSON; returns counters (``RecordingError`` if bad).

    ``ValueError`` for an unknown region.
    """
    plan = BandPlan.for_region(region)
    counters: Counter[str] = Counter()
    dwells = open_recording(path)
    for dwell, burst in detect_dwells(dwells, counters):
        rec = to_record(burst, plan)
        emitter = "uplink" if rec.band is not None else "other"
        line = {
            "t_start": round(rec.ts, 7),
            "t_end": round(rec.t_end, 7),
            "freq_mhz": rec.freq_mhz,
            "bandwidth_khz": rec.bandwidth_khz,
            "power_dbfs": rec.power_dbfs,
            "snr_db": rec.snr_db,
            "band": rec.band,
            "emitter": emitter,
            "region": plan.region,
            "duration_us": round(burst.duration_s * 1e6, 1),
            "shape": burst.shape,
            "flat": round(burst.flat, 2),
            "dip_db": round(burst.dip_db, 1),
            "full_scale": dwell.full_scale,
            "scale": dwell.scale,
            "centre_mhz": round(dwell.centre_hz / 1e6, 4),
            "sample_start": dwell.sample_start + burst.sample_start,
            "sample_count": burst.sample_count,
        }
        out.write(json.dumps(line) + "\n")
        counters["records"] += 1
        counters[f"{emitter}_emitter"] += 1
    return counters
