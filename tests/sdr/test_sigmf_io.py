"""SigMF and .cu8 reading/writing: segments, datatypes, times, and the sigmf package agrees."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from scanner.errors import RecordingError
from scanner.sources.sdr import synth
from scanner.sources.sdr.inspect import inspect_file
from scanner.sources.sdr.replay import read_bursts
from scanner.sources.sdr.samples import quantise_cu8, to_complex64
from scanner.sources.sdr.sigmf_io import (
    Annotation,
    Segment,
    iso_utc,
    open_recording,
    parse_cu8_name,
    parse_iso_utc,
    write_scenario_segments,
    write_sigmf,
)

RATE = 2.4e6
T0 = 1_764_000_000.25


def _window(rng: np.random.Generator, with_burst: bool, offset_hz: float = 150e3) -> np.ndarray:
    bursts = synth.gsm_schedule(0.004, 0.02, offset_hz, -25.0) if with_burst else []
    return synth.synth_cu8(rng, RATE, int(0.03 * RATE), -40.0, bursts)


def test_scenario_segments_are_separate_dwells(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    segs = [
        Segment(T0 + 60.0, 890.0e6, RATE, _window(rng, True)),
        Segment(T0, 842.0e6, RATE, _window(rng, False)),
        Segment(T0 + 600.5, 890.0e6, RATE, _window(rng, True, -300e3)),
    ]
    write_scenario_segments(tmp_path / "sdr", segs)
    dwells = open_recording(tmp_path / "sdr.sigmf-meta")
    assert [d.centre_hz for d in dwells] == [842.0e6, 890.0e6, 890.0e6]
    assert [round(d.t0, 6) for d in dwells] == [T0, T0 + 60.0, T0 + 600.5]
    assert all(d.n_samples == int(0.03 * RATE) and d.datatype == "cu8" for d in dwells)
    counters: Counter[str] = Counter()
    bursts = list(read_bursts(tmp_path / "sdr.sigmf-data", counters))
    assert counters["dwells"] == 3
    # 0.02 s of one slot per 4.615 ms frame: 5 bursts in each window that has a handset.
    first = [b for b in bursts if b.ts < T0 + 100]
    second = [b for b in bursts if b.ts > T0 + 100]
    assert len(first) == 5 and len(second) == 5
    assert all(T0 + 60.004 <= b.ts < T0 + 60.03 for b in first)
    assert all(b.mono == b.ts and b.band == "E-GSM-900 + LTE B8 UL" for b in bursts)
    assert abs(np.median([b.freq_mhz for b in first]) - 890.15) < 0.03
    assert abs(np.median([b.freq_mhz for b in second]) - 889.7) < 0.03


def test_time_of_sample_is_segment_datetime_plus_offset(tmp_path: Path) -> None:
    iq = np.zeros(1000, np.complex64)
    iq[700:] = 0.5
    write_sigmf(
        tmp_path / "t", [Segment(T0, 100e6, 1e5, iq[:500]), Segment(T0 + 9, 100e6, 1e5, iq[500:])]
    )
    meta = json.loads((tmp_path / "t.sigmf-meta").read_text())
    assert [c["core:sample_start"] for c in meta["captures"]] == [0, 500]
    d = open_recording(tmp_path / "t.sigmf-meta")[1]
    assert d.sample_start == 500 and d.datatype == "cf32_le"
    # sample 700 of the file is sample 200 of the second segment
    assert d.t0 + (700 - d.sample_start) / d.rate == pytest.approx(T0 + 9.002)
    assert to_complex64(d.raw, d.datatype)[200] == pytest.approx(0.5)


@pytest.mark.parametrize("datatype", ["cu8", "ci8", "ci16_le", "cf32_le"])
def test_datatypes_decode_to_the_same_signal(tmp_path: Path, datatype: str) -> None:
    rng = np.random.default_rng(3)
    ref = (rng.uniform(-0.9, 0.9, 200) + 1j * rng.uniform(-0.9, 0.9, 200)).astype(np.complex64)
    flat = ref.view(np.float32)
    raw = {
        "cu8": quantise_cu8(ref),
        "ci8": np.clip(np.round(flat * 128), -128, 127).astype(np.int8),
        "ci16_le": np.round(flat * 32767).astype("<i2"),
        "cf32_le": flat.astype("<f4"),
    }[datatype]
    (tmp_path / "x.sigmf-data").write_bytes(raw.tobytes())
    meta = {
        "global": {"core:datatype": datatype, "core:sample_rate": 1e6, "core:version": "1.0.0"},
        "captures": [
            {
                "core:sample_start": 0,
                "core:frequency": 9e8,
                "core:datetime": "2025-11-24T16:00:00.5Z",
            }
        ],
        "annotations": [],
    }
    (tmp_path / "x.sigmf-meta").write_text(json.dumps(meta))
    (d,) = open_recording(tmp_path / "x.sigmf-meta")
    assert d.t0 == pytest.approx(parse_iso_utc("2025-11-24T16:00:00Z") + 0.5)
    got = to_complex64(d.raw, d.datatype)
    assert np.max(np.abs(got - ref)) < 0.01


def test_sigmf_package_reads_our_files(tmp_path: Path) -> None:
    sigmffile = pytest.importorskip("sigmf.sigmffile")
    rng = np.random.default_rng(1)
    segs = [Segment(T0 + i, 880e6 + i * 1e6, RATE, _window(rng, False)[:2000]) for i in range(3)]
    ann = [Annotation(100, 50, 889.9e6, 890.1e6, extra={"snr_db": 12.5})]
    meta_path = write_sigmf(tmp_path / "r", segs, ann, description="test")
    handle = sigmffile.fromfile(str(meta_path))
    assert handle.get_global_field("core:datatype") == "cu8"
    caps = handle.get_captures()
    assert [c["core:frequency"] for c in caps] == [880e6, 881e6, 882e6]
    assert handle.get_annotations()[0]["checkpoint:snr_db"] == 12.5


def test_cu8_name_and_mtime(tmp_path: Path) -> None:
    assert parse_cu8_name("g005_868.3M_250k.cu8") == (868.3e6, 250e3)
    assert parse_cu8_name("capture.cu8") is None
    rng = np.random.default_rng(5)
    raw = synth.synth_cu8(
        rng, RATE, int(0.02 * RATE), -40.0, synth.gsm_schedule(0.002, 0.015, 0.0, -20.0)
    )
    p = tmp_path / "g001_890M_2400k.cu8"
    p.write_bytes(raw.tobytes())
    os.utime(p, (T0, T0))
    (d,) = open_recording(p)
    assert (d.centre_hz, d.rate, d.datatype) == (890e6, 2.4e6, "cu8")
    assert d.t0 == pytest.approx(T0 - 0.02)
    bursts = list(read_bursts(p, Counter()))
    assert len(bursts) == 4


def test_bad_files_raise_recording_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError):
        open_recording(tmp_path / "missing.sigmf-meta")
    (tmp_path / "bad.sigmf-meta").write_text("{not json")
    with pytest.raises(RecordingError, match="JSON"):
        open_recording(tmp_path / "bad.sigmf-meta")
    (tmp_path / "dt.sigmf-meta").write_text(
        json.dumps({"global": {"core:datatype": "ri16_le", "core:sample_rate": 1}})
    )
    with pytest.raises(RecordingError, match="datatype"):
        open_recording(tmp_path / "dt.sigmf-meta")
    (tmp_path / "x.cu8").write_bytes(b"\x80" * 10)
    with pytest.raises(RecordingError, match="carry its tuning in its name"):
        open_recording(tmp_path / "x.cu8")


def test_truncated_data_and_odd_byte_are_read_to_the_last_whole_sample(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    raw = synth.synth_cu8(rng, RATE, 20000, -40.0, [])
    write_sigmf(tmp_path / "c", [Segment(T0, 890e6, RATE, raw), Segment(T0 + 1, 890e6, RATE, raw)])
    data = tmp_path / "c.sigmf-data"
    data.write_bytes(data.read_bytes()[: 2 * 30000 + 1])  # second segment cut short, torn pair
    dwells = open_recording(data)
    assert [d.n_samples for d in dwells] == [20000, 10000]
    assert list(read_bursts(data, Counter())) == []


def test_iso_round_trip() -> None:
    t = 1_764_000_000.123456
    assert iso_utc(t).endswith("Z")
    assert parse_iso_utc(iso_utc(t)) == pytest.approx(t, abs=1e-6)
    assert parse_iso_utc("2025-11-24T16:00:00.1234567+00:00") == pytest.approx(
        parse_iso_utc("2025-11-24T16:00:00Z") + 0.1234567, abs=1e-9
    )


def test_inspect_writes_contract_fields(tmp_path: Path) -> None:
    import io

    rng = np.random.default_rng(11)
    write_scenario_segments(tmp_path / "s", [Segment(T0, 855e6, RATE, _window(rng, True))])
    out = io.StringIO()
    counters = inspect_file(tmp_path / "s.sigmf-meta", out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert counters["records"] == len(lines) == 5
    for line in lines:
        assert {
            "t_start",
            "t_end",
            "freq_mhz",
            "bandwidth_khz",
            "power_dbfs",
            "snr_db",
            "band",
        } <= set(line)
        assert line["band"] == "LTE B20 UL"
        assert 450 < line["duration_us"] < 650
