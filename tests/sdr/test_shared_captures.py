"""One test per folder of ../shared/data/sdr/, checking what its README row says.

Each folder's README (and the table in ../shared/data/README.md) states what the capture holds
and what to check; a folder that is absent skips with its path, so a new capture dropped there
with a row gets its own test here.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from scanner.sources.sdr.inspect import inspect_file
from scanner.sources.sdr.replay import read_bursts
from scanner.sources.sdr.sigmf_io import open_recording


def _folder(shared_data: Path, name: str) -> Path:
    path = shared_data / "sdr" / name
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


def _inspect(path: Path, region: str = "eu") -> list[dict[str, object]]:
    out = io.StringIO()
    inspect_file(path, out, region=region)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _replay(tmp_path: Path, captures: list[Path]) -> tuple[dict[str, object], list[str]]:
    """``checkpoint replay --fast`` of a scenario holding only these SigMF recordings."""
    scenario = tmp_path / "scenario"
    (scenario / "sdr").mkdir(parents=True)
    for meta in captures:
        for suffix in (".sigmf-meta", ".sigmf-data"):
            src = meta.with_suffix(suffix)
            (scenario / "sdr" / src.name).symlink_to(src)
    alerts = tmp_path / "alerts.ndjson"
    argv = [sys.executable, "-m", "scanner.cli.main", "replay", str(scenario), "--fast"]
    run = subprocess.run(
        [*argv, "--alerts", str(alerts)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stderr.strip().splitlines()[-1])  # the run's counters
    return summary, alerts.read_text(encoding="utf-8").splitlines()


def test_gsm_uplink_four_handset_bursts(shared_data: Path, tmp_path: Path) -> None:
    """Row: the detector finds exactly 4 bursts about 2.31 ms apart (rtl_433's 3 are checked,
    burst by burst, in test_real_capture)."""
    meta = _folder(shared_data, "gsm-uplink") / "gsm-uplink-4bursts.sigmf-meta"
    lines = _inspect(meta)
    assert len(lines) == 4
    spacing = np.diff([float(str(x["t_start"])) for x in lines])
    assert np.all(np.abs(spacing - 2.31e-3) < 0.03e-3), spacing
    assert {x["shape"] for x in lines} == {"gsm"}
    assert {x["emitter"] for x in lines} == {"uplink"}
    # cf32 within +-1: taken at unit scale; a handset near the antenna, below full scale.
    assert {x["scale"] for x in lines} == {"unit"}
    assert all(-12.0 < float(str(x["power_dbfs"])) < 0.0 for x in lines)
    # The control for the two false-alarm folders below: in-band bursts do reach the core.
    summary, _alerts = _replay(tmp_path, [meta])
    assert summary["records"] == 4


@pytest.mark.parametrize(
    "name", ["wmbus-t1-2meters.sigmf-meta", "rtlsdr_868.950M_1M6_samples2.cu8"]
)
def test_wmbus_two_fsk_telegrams_no_presence(shared_data: Path, name: str) -> None:
    """Row: 2 telegrams at about 868.94 MHz, 150 kHz wide; shape not lte/gsm; band null; the
    ``1M6`` name parsed (868.95 MHz, 1.6 MS/s)."""
    path = _folder(shared_data, "wmbus-868") / name
    (dwell,) = open_recording(path)
    assert (dwell.centre_hz, dwell.rate, dwell.datatype) == (868.95e6, 1.6e6, "cu8")
    lines = _inspect(path)
    assert not {x["shape"] for x in lines} & {"lte", "gsm"}, lines
    assert {x["band"] for x in lines} == {None}
    assert {x["emitter"] for x in lines} == {"other"}
    telegrams = [x for x in lines if x["shape"] == "fsk"]
    assert len(telegrams) == 2, lines
    for x in telegrams:
        assert abs(float(str(x["freq_mhz"])) - 868.94) < 0.02
        assert 100.0 <= float(str(x["bandwidth_khz"])) <= 200.0
    # rtl_wmbus: meter 71200023 about 6 ms, meter 64700082 about 14 ms.
    durations = sorted(float(str(x["duration_us"])) / 1e3 for x in telegrams)
    assert durations[0] == pytest.approx(6.5, abs=1.0)
    assert durations[1] == pytest.approx(14.5, abs=1.5)
    # Everything else the detector noticed is too weak to have a shape (under 10 dB SNR).
    assert all(float(str(x["snr_db"])) < 10.0 for x in lines if x["shape"] != "fsk")
    counters: Counter[str] = Counter()
    assert list(read_bursts(path, counters)) == []
    assert counters["other_emitter"] == len(lines)


def test_gsm_downlink_no_presence_and_sane_power(shared_data: Path, tmp_path: Path) -> None:
    """Row: no handset presence, no uplink band label, power relative to the file's scale."""
    folder = _folder(shared_data, "gsm-downlink")
    metas = sorted(folder.glob("*.sigmf-meta"))
    assert len(metas) == 2
    for meta in metas:
        (dwell,) = open_recording(meta)
        # Raw 16-bit counts kept as floats: the file's own peak is its full scale.
        assert dwell.scale == "file_peak" and dwell.full_scale > 1000.0
        lines = _inspect(meta)
        assert lines
        assert {x["band"] for x in lines} == {None}
        for x in lines:
            # No burst's mean power can exceed the peak scalar on both I and Q (+3 dB).
            assert -60.0 < float(str(x["power_dbfs"])) <= 3.02, x
        for region in ("eu", "us"):  # E-GSM-900 downlink is nobody's uplink
            assert {x["band"] for x in _inspect(meta, region)} == {None}
    summary, alerts = _replay(tmp_path, metas)
    assert summary["records"] == 0
    assert alerts == []


def test_false_alarm_folders_raise_nothing_together(shared_data: Path, tmp_path: Path) -> None:
    """The meter and base-station captures replayed as one scenario: no record, no alert."""
    metas = [_folder(shared_data, "wmbus-868") / "wmbus-t1-2meters.sigmf-meta"]
    metas += sorted(_folder(shared_data, "gsm-downlink").glob("*.sigmf-meta"))
    summary, alerts = _replay(tmp_path, metas)
    assert summary["records"] == 0
    assert alerts == []
