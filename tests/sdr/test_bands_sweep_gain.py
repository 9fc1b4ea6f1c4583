"""Band plans, the sweep scheduler, the downlink survey, gain control, nearness, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from scanner.sources.sdr import synth
from scanner.sources.sdr.bands import ALL_BANDS, TUNER_MAX_HZ, BandPlan
from scanner.sources.sdr.dsp import (
    BurstDetector,
    GainController,
    GainPolicy,
    estimate_distance_m,
)
from scanner.sources.sdr.options import NearnessCalibration, SweepOptions, Tuning
from scanner.sources.sdr.recorder import SigmfRecorder
from scanner.sources.sdr.replay import read_bursts
from scanner.sources.sdr.samples import clipped_count
from scanner.sources.sdr.sigmf_io import read_meta
from scanner.sources.sdr.sweep import (
    SweepScheduler,
    downlink_tunings,
    find_carriers,
)

RATE = 2.4e6


def test_region_presets_and_duplex() -> None:
    eu = {b.name for b in BandPlan.for_region("EU").bands}
    us = {b.name for b in BandPlan.for_region("us").bands}
    theatre = {b.name for b in BandPlan.for_region("ua-ru").bands}
    assert {"E-GSM-900 UL", "LTE B8 UL", "LTE B20 UL", "LTE B28 UL", "LTE B3 UL"} <= eu
    assert {"LTE B5 UL", "LTE B12 UL", "LTE B13 UL", "LTE B14 UL", "LTE B17 UL", "LTE B71 UL"} <= us
    assert {"LTE B26 UL", "LTE B66 UL", "GSM-850 UL"} <= us and "LTE B20 UL" not in us
    assert "LTE B31 UL" in theatre and "LTE B28 UL" not in theatre
    with pytest.raises(ValueError, match="unknown region"):
        BandPlan.for_region("mars")
    for band in ALL_BANDS:
        # the downlink is the uplink moved by the duplex spacing, at both edges
        assert band.downlink_of(band.ul_low_hz) == pytest.approx(band.dl_low_hz)
        assert band.uplink_of(band.dl_high_hz) == pytest.approx(band.ul_high_hz)
        assert band.ul_high_hz <= TUNER_MAX_HZ
    b20 = BandPlan.named(["LTE B20 UL"]).bands[0]
    assert b20.duplex_hz < 0  # reverse duplex: the downlink sits below


def test_band_labels_follow_the_region_not_the_shape() -> None:
    eu = BandPlan.for_region("eu")
    us = BandPlan.for_region("us")
    # One range, two air interfaces: one label, whatever the burst looked like, so an LTE
    # phone's short PUCCH slots and its PUSCH grants are one transmitter in the core.
    assert eu.band_for(890.2e6, "gsm") == eu.band_for(890.2e6, "lte") == "E-GSM-900 + LTE B8 UL"
    assert eu.band_for(1750e6) == "DCS-1800 + LTE B3 UL"
    # 832-849 MHz: B20 uplink in Europe (TS 36.101: 832-862), B5/B26 in the Americas.
    assert eu.band_for(840e6) == "LTE B20 UL"
    assert us.band_for(840e6) == "LTE B5 + GSM-850 + LTE B26 UL"
    assert eu.band_for(855e6) == "LTE B20 UL" and us.band_for(855e6) is None
    assert us.band_for(710e6) == "LTE B12 + LTE B17 UL"
    assert eu.band_for(950e6) is None  # downlink, not uplink
    assert eu.band_for(868.95e6) is None and us.band_for(868.95e6) is None  # SRD: meters
    for region in ("jp", "au", "in"):
        plan = BandPlan.for_region(region)
        assert plan.band_for(710e6) == "LTE B28 UL"  # APT 700 everywhere in Asia-Pacific
    assert BandPlan.for_region("jp").band_for(1440e6) == "LTE B11 UL"
    described = us.describe()
    assert described["region"] == "us"
    # describe() returns JSON-shaped values typed object; its uplink entry is a list of dicts.
    assert {"label": "LTE B71 UL", "low_mhz": 663.0, "high_mhz": 698.0} in described["uplink"]  # type: ignore[operator]


def test_tunings_cover_each_band_once() -> None:
    plan = BandPlan.for_region("eu")
    tunings = plan.tunings(RATE)
    span = 0.8 * RATE
    for band in plan.bands:
        centres = sorted(c for _n, c in tunings if band.ul_low_hz <= c <= band.ul_high_hz)
        assert centres[0] - span / 2 <= band.ul_low_hz + 1
        assert centres[-1] + span / 2 >= band.ul_high_hz - 1
        assert all(np.diff(centres) <= span + 1)
    # E-GSM and B8 share a range: tuned once, not twice
    assert len(tunings) == len({c for _n, c in tunings})


def test_sweep_weights_active_channels_without_starving_the_rest() -> None:
    tunings = [Tuning("x", 880e6 + i * 2e6) for i in range(5)]
    sched = SweepScheduler(tunings, SweepOptions(activity_gain=0.5, activity_half_life_s=60.0))
    busy = tunings[2]
    visits: Counter[Tuning] = Counter()
    for _ in range(400):
        t = sched.next()
        assert t is not None
        visits[t] += 1
        sched.report(t, 400 if t == busy else 0, 0.25)
    assert visits[busy] > 2.5 * max(visits[t] for t in tunings if t != busy)
    assert min(visits.values()) >= 20  # every channel still gets turns
    sched.drop(tunings[0], "tuner refused 880 MHz")
    assert all(sched.next() != tunings[0] for _ in range(50))
    assert sched.dropped() == {"880.000": "tuner refused 880 MHz"}


def test_downlink_survey_finds_carriers_and_weights_their_uplink() -> None:
    rng = np.random.default_rng(8)
    n = int(0.05 * RATE)
    centre = 945e6
    t = np.arange(n) / RATE
    iq = synth.receiver_noise(rng, n, -40.0)
    iq += (0.05 * np.exp(2j * np.pi * 400e3 * t)).astype(np.complex64)  # a BCCH carrier
    frames = iq[: n // 256 * 256].reshape(-1, 256) * np.hanning(256)
    mean_power = (np.abs(np.fft.fftshift(np.fft.fft(frames, axis=1), axes=1)) ** 2).mean(0)
    carriers = find_carriers(mean_power.astype(np.float32), centre, RATE)
    assert len(carriers) == 1 and abs(carriers[0] - 945.4e6) < 10e3
    plan = BandPlan.for_region("eu")
    assert any(t.band == "E-GSM-900 UL" for t in downlink_tunings(plan, RATE))
    # B66's downlink starts at 2110 MHz, past the tuner: never a survey tuning.
    us = downlink_tunings(BandPlan.for_region("us"), RATE)
    assert us and all(t.centre_hz <= TUNER_MAX_HZ for t in us)
    sched = SweepScheduler.for_plan(plan, RATE, SweepOptions())
    assert sched.mark_downlink_carriers(plan, carriers) >= 1
    near = min(sched.tunings, key=lambda t: abs(t.centre_hz - 900.4e6))
    far = min(sched.tunings, key=lambda t: abs(t.centre_hz - 840e6))
    assert sched.weight(near) > sched.weight(far)


def test_clipped_scalars_are_counted_at_either_rail_alone() -> None:
    rng = np.random.default_rng(5)
    inside = rng.integers(1, 255, 4096).astype(np.uint8)  # never at a rail
    assert clipped_count(inside, "cu8") == 0
    assert clipped_count(inside[:0], "cu8") == 0
    for rail in (0, 255):
        raw = inside.copy()
        raw[[3, 700, 4095]] = rail
        assert clipped_count(raw, "cu8") == 3
    both = inside.copy()
    both[:5] = 0
    both[-2:] = 255
    assert clipped_count(both, "cu8") == 7
    assert clipped_count(both.view(np.int8), "ci8") == int(np.count_nonzero(both == 127)) + int(
        np.count_nonzero(both == 128)
    )


def test_overload_is_detected_and_the_gain_steps_down() -> None:
    rng = np.random.default_rng(4)
    strong = synth.gsm_schedule(0.0, 0.05, 100e3, 3.0)  # +3 dBFS: the ADC clips
    raw = synth.synth_cu8(rng, RATE, int(0.05 * RATE), -35.0, strong)
    det = BurstDetector(RATE)
    det.begin_dwell(890e6, 0.0)
    det.feed(raw, "cu8")
    assert det.stats.last_clip_fraction > 1e-3
    gain = GainController(GainPolicy())
    before = gain.gain_db
    new = gain.update(det.stats.last_clip_fraction, det.stats.noise_floor_dbfs, now=100.0)
    assert gain.overloaded and new is not None and new < before
    assert gain.update(det.stats.last_clip_fraction, -30.0, now=100.5) is None  # hold time
    quiet = GainController(GainPolicy())
    up = quiet.update(0.0, -60.0, now=10.0)  # noise far below full scale: more gain
    assert up is not None and up > before
    fixed = GainController(GainPolicy(fixed_db=20.7))
    assert fixed.update(0.5, -60.0, now=10.0) is None and fixed.gain_db == 20.7


def test_nearness_falls_with_power() -> None:
    cal = NearnessCalibration()
    near = estimate_distance_m(-10.0, 30.0, cal)
    far = estimate_distance_m(-40.0, 30.0, cal)
    assert near < far
    # 10 dB of gain more means the same dBFS is 10 dB weaker at the antenna: farther
    assert estimate_distance_m(-10.0, 40.0, cal) > near


def test_recorder_writes_segments_and_annotations(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    rec = SigmfRecorder(tmp_path / "rec", RATE)
    det = BurstDetector(RATE)
    t0 = 1_764_000_000.0
    for i, centre in enumerate((890e6, 850e6)):
        raw = synth.synth_cu8(
            rng, RATE, int(0.03 * RATE), -35.0, synth.gsm_schedule(0.003, 0.02, 200e3, -20.0)
        )
        rec.begin_segment(t0 + i, centre)
        det.begin_dwell(centre, t0 + i)
        for piece in np.array_split(raw, 5):
            rec.write(piece)
            for b in det.feed(piece, "cu8"):
                rec.annotate(b)
        for b in det.end_dwell():
            rec.annotate(b)
    rec.close()
    meta = read_meta(tmp_path / "rec.sigmf-meta")
    assert [c["core:frequency"] for c in meta["captures"]] == [890e6, 850e6]
    assert len(meta["annotations"]) == 10
    assert all(a["checkpoint:snr_db"] > 10 for a in meta["annotations"])
    replayed = list(read_bursts(tmp_path / "rec.sigmf-meta", Counter()))
    # Each annotation's time (its segment's datetime + offset in the segment) is a replayed
    # burst's start: the recording replays to what was seen live.
    seg_len = int(0.03 * RATE)
    noted = sorted(
        t0 + a["core:sample_start"] // seg_len + (a["core:sample_start"] % seg_len) / RATE
        for a in meta["annotations"]
    )
    assert [b.ts for b in replayed] == pytest.approx(noted, abs=1e-6)


def test_cli_inspect_sdr(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    raw = synth.synth_cu8(
        rng, RATE, int(0.03 * RATE), -35.0, synth.gsm_schedule(0.002, 0.02, 0.0, -20.0)
    )
    good = tmp_path / "gate_890.2M_2400k.cu8"
    good.write_bytes(raw.tobytes())
    exe = [sys.executable, "-m", "scanner.cli.main", "inspect", "sdr"]
    out = subprocess.run([*exe, str(good)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == 5 and all(x["band"] == "E-GSM-900 + LTE B8 UL" for x in lines)
    bad = subprocess.run(
        [*exe, str(tmp_path / "nothing.sigmf-meta")], capture_output=True, text=True, check=False
    )
    assert bad.returncode != 0
    assert len(bad.stderr.strip().splitlines()) == 1 and "cannot read" in bad.stderr
