"""Hostile SigMF/cu8 metadata and detector settings: refused with a clear, named reason.

A recording whose rate or segment table the detector cannot use is refused as a whole
(``RecordingError``); the detector itself refuses a rate or parameter it cannot work with with a
``ValueError`` naming it, so a bad configuration fails at parse time, before any capture thread.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scanner.errors import RecordingError
from scanner.sources.sdr.constants import MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ
from scanner.sources.sdr.dsp import BurstDetector
from scanner.sources.sdr.options import DetectorParams
from scanner.sources.sdr.replay import read_bursts
from scanner.sources.sdr.sigmf_io import open_recording


def _noise(n_bytes: int = 40_000) -> bytes:
    return np.random.default_rng(3).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()


def _sigmf(tmp: Path, glob: dict[str, Any], captures: Any = None) -> Path:
    meta: dict[str, Any] = {"global": {"core:datatype": "cu8", **glob}}
    if captures is not None:
        meta["captures"] = captures
    (tmp / "rec.sigmf-data").write_bytes(_noise())
    # allow_nan: Python's json writes Infinity/NaN, which other writers may do too.
    (tmp / "rec.sigmf-meta").write_text(json.dumps(meta, allow_nan=True))
    return tmp / "rec.sigmf-meta"


@pytest.mark.parametrize(
    "rate",
    [0, -1.0, 1, 999.0, float("inf"), float("-inf"), float("nan"), 1e309, 100.001e6, 1e12],
)
def test_sigmf_rates_the_detector_cannot_use_are_refused(tmp_path: Path, rate: float) -> None:
    path = _sigmf(tmp_path, {"core:sample_rate": rate})
    with pytest.raises(RecordingError, match="core:sample_rate"):
        open_recording(path)


@pytest.mark.parametrize("rate", [MIN_SAMPLE_RATE_HZ, 250e3, 2.4e6, MAX_SAMPLE_RATE_HZ])
def test_sigmf_rates_at_and_inside_the_bounds_are_read_and_detected(
    tmp_path: Path, rate: float
) -> None:
    path = _sigmf(tmp_path, {"core:sample_rate": rate})
    (dwell,) = open_recording(path)
    assert dwell.rate == rate
    counters: Counter[str] = Counter()
    bursts = list(read_bursts(path, counters))
    assert counters["dwells"] == 1
    assert counters["samples"] == 20_000
    assert all(np.isfinite([b.ts, b.t_end, b.freq_mhz]).all() for b in bursts)


@pytest.mark.parametrize(
    "start",
    [float("inf"), float("-inf"), float("nan"), 1e309, -1, -(2**40), 10.5, "100", True, None, []],
)
def test_unusable_sample_starts_refuse_the_file(tmp_path: Path, start: Any) -> None:
    # A start is also the previous segment's end, so it cannot be dropped on its own.
    path = _sigmf(
        tmp_path,
        {"core:sample_rate": 1e6},
        [{"core:sample_start": 0}, {"core:sample_start": start}],
    )
    with pytest.raises(RecordingError, match=r"capture 1: core:sample_start"):
        open_recording(path)


def test_whole_float_sample_starts_are_read(tmp_path: Path) -> None:
    path = _sigmf(
        tmp_path, {"core:sample_rate": 1e6}, [{"core:sample_start": 0}, {"core:sample_start": 5e3}]
    )
    assert [d.n_samples for d in open_recording(path)] == [5000, 15_000]


@pytest.mark.parametrize("freq", [float("inf"), float("nan"), 1e309])
def test_non_finite_capture_frequency_refuses_the_file(tmp_path: Path, freq: float) -> None:
    path = _sigmf(tmp_path, {"core:sample_rate": 1e6}, [{"core:frequency": freq}])
    with pytest.raises(RecordingError, match="core:frequency"):
        open_recording(path)


@pytest.mark.parametrize(
    "name",
    [
        "g001_868.0M_0k.cu8",
        "g001_868.0M_0.0k.cu8",
        "g001_868.0M_0.000001k.cu8",
        "g001_868.0M_0.999k.cu8",
        "g001_868.0M_100001k.cu8",
    ],
)
def test_cu8_names_with_unusable_rates_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_noise())
    with pytest.raises(RecordingError, match="rate in the name"):
        open_recording(path)


def test_cu8_at_the_lowest_rate_is_read(tmp_path: Path) -> None:
    path = tmp_path / "g001_868.0M_1k.cu8"
    path.write_bytes(_noise())
    counters: Counter[str] = Counter()
    list(read_bursts(path, counters))
    assert counters["samples"] == 20_000


@pytest.mark.parametrize(
    "rate", [0, -2.4e6, 1.0, 999.9, float("inf"), float("nan"), 1e9, "2.4e6", None]
)
def test_detector_refuses_rates_naming_the_parameter(rate: Any) -> None:
    with pytest.raises(ValueError, match=r"^rate must be"):
        BurstDetector(rate)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fft_size", 0),
        ("fft_size", 100),
        ("half_channel_bins", 0),
        ("block_frames", 0),
        ("block_frames", -16),
        ("block_frames", 20),
        ("max_gap_frames", -1),
        ("merge_cells", -1),
        ("pfa", 0.0),
        ("pfa", 1.0),
        ("pfa", float("nan")),
        ("min_duration_s", float("inf")),
        ("min_duration_s", -1.0),
        ("max_burst_s", 0.0),
        ("max_burst_s", float("nan")),
        ("floor_rise_db_per_s", float("inf")),
        ("floor_rise_db_per_s", 1e6),
        ("floor_fall_db", -1.0),
        ("floor_track_db", float("nan")),
        ("floor_alpha", 0.0),
        ("floor_alpha", 1.5),
        ("band_threshold_db", -1e6),
        ("edge_db", float("inf")),
    ],
)
def test_detector_refuses_parameters_naming_them(field: str, value: Any) -> None:
    params = dataclasses.replace(DetectorParams(), **{field: value})
    with pytest.raises(ValueError, match=field):
        BurstDetector(2.4e6, params)
    with pytest.raises(ValueError, match=field):
        DetectorParams.from_mapping({field: value})


def test_detector_refuses_a_floor_rise_that_overflows_at_a_low_rate() -> None:
    params = dataclasses.replace(DetectorParams(), floor_rise_db_per_s=100.0, block_frames=1024)
    BurstDetector(2.4e6, params)  # fine at the dongle's rate
    with pytest.raises(ValueError, match="floor_rise_db_per_s"):
        BurstDetector(MIN_SAMPLE_RATE_HZ, params)


def test_default_detector_works_across_the_whole_rate_range() -> None:
    for rate in (MIN_SAMPLE_RATE_HZ, 225e3, 3.2e6, MAX_SAMPLE_RATE_HZ):
        det = BurstDetector(rate)
        assert det.frame_s > 0 and np.isfinite(det.frame_s)
        det.begin_dwell(868e6, 0.0)
        det.feed(np.frombuffer(_noise(8192), np.uint8), "cu8")
        det.end_dwell()
