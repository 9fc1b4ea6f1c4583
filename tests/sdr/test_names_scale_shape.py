"""rtl_433-style file names, full scale per datatype, and the air-interface shape classifier."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from scanner.errors import RecordingError
from scanner.sources.sdr import synth
from scanner.sources.sdr.dsp import Burst, BurstDetector, classify_shape
from scanner.sources.sdr.replay import detect_dwells, read_bursts
from scanner.sources.sdr.samples import Complex64Array, quantise_cu8
from scanner.sources.sdr.sigmf_io import Segment, open_recording, parse_iq_name, write_sigmf

RATE = 2.4e6
NOISE_DBFS = -35.0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("g005_868.3M_250k.cu8", (868.3e6, 250e3, "cu8")),  # rtl_433's own
        ("g001_433.92M_1000k.cs16", (433.92e6, 1e6, "ci16_le")),
        ("rtlsdr_868.950M_1M6_samples2.cu8", (868.95e6, 1.6e6, "cu8")),  # rtl-wmbus
        ("x_868.3M_2.4M.cs8", (868.3e6, 2.4e6, "ci8")),  # two "M": the smaller is the rate
        ("cap_868950000Hz_1600ksps.cf32", (868.95e6, 1.6e6, "cf32_le")),
        ("cap_868.95MHz_2.4Msps.cu8", (868.95e6, 2.4e6, "cu8")),
        ("cap_868950000_1600000.cu8", (868.95e6, 1.6e6, "cu8")),  # plain Hz and S/s
        ("g002_890.2M_2M4_20261204.cu8", (890.2e6, 2.4e6, "cu8")),  # a date is not a tuning
        ("capture.cu8", None),
        ("capture_868.3M.cu8", None),  # no rate
        ("capture.wav", None),
    ],
)
def test_file_name_grammar(name: str, expected: tuple[float, float, str] | None) -> None:
    got = parse_iq_name(name)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert got[0] == pytest.approx(expected[0]) and got[1] == pytest.approx(expected[1])
        assert got[2] == expected[2]


def test_ambiguous_name_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell"):
        parse_iq_name("a_1M_2M_3M.cu8")
    path = tmp_path / "a_1M_2M_3M.cu8"
    path.write_bytes(b"\x80" * 64)
    with pytest.raises(RecordingError, match="cannot tell the centre frequency"):
        open_recording(path)


def _gsm_iq(seconds: float, seed: int) -> Complex64Array:
    rng = np.random.default_rng(seed)
    power = synth.power_dbfs_for(25.0, NOISE_DBFS, synth.GSM_BANDWIDTH_HZ, RATE)
    bursts = synth.gsm_schedule(0.0, seconds, 100e3, power)
    return synth.render(rng, RATE, int(seconds * RATE), NOISE_DBFS, bursts)


def test_power_is_relative_to_full_scale_for_every_datatype(tmp_path: Path) -> None:
    """The same IQ as cu8, unit-scale cf32 and raw-scale cf32 reads the same dB below full
    scale; a raw-scale float file says it used its own peak."""
    iq = _gsm_iq(0.03, 3)
    peak = float(np.abs(iq.view(np.float32)).max())
    unit = iq * np.float32(0.9 / peak)  # largest scalar 0.9
    results = {}
    for label, data in (
        ("cu8", quantise_cu8(unit)),
        ("unit", unit),
        ("raw", unit * np.float32(5000.0)),  # a USRP's counts kept as floats
    ):
        write_sigmf(tmp_path / label, [Segment(0.0, 890e6, RATE, data)])
        (dwell,) = open_recording(tmp_path / f"{label}.sigmf-meta")
        results[label] = (dwell, [b for _d, b in detect_dwells([dwell], Counter())])
    assert results["cu8"][0].scale == "datatype"
    assert results["unit"][0].scale == "unit" and results["unit"][0].full_scale == 1.0
    raw_dwell = results["raw"][0]
    assert raw_dwell.scale == "file_peak"
    assert raw_dwell.full_scale == pytest.approx(4500.0, rel=1e-3)
    unit_power = [b.power_dbfs for b in results["unit"][1]]
    cu8_power = [b.power_dbfs for b in results["cu8"][1]]
    raw_power = [b.power_dbfs for b in results["raw"][1]]
    assert len(unit_power) == len(cu8_power) == len(raw_power) >= 5
    # cu8 quantises (0.5 LSB noise): within a fraction of a dB.
    assert np.allclose(unit_power, cu8_power, atol=0.5)
    # The raw file's peak (0.9 x 5000) is its full scale: 20 log10(1 / 0.9) dB above unit's.
    assert np.allclose(raw_power, np.array(unit_power) + 20 * math.log10(1 / 0.9), atol=0.01)
    assert max(raw_power) < 0.0


# Mean excess spectra over a burst's band: GMSK's single hump, SC-FDMA's flat top, and two
# FSK tones with a valley 4.5 dB deep between them.
HUMP = (0.1, 0.2, 0.35, 0.7, 1.0, 0.7, 0.35, 0.2, 0.1)
FLAT_TOP = (0.2, 0.9, 1.0, 0.95, 1.0, 0.9, 1.0, 0.95, 0.2)
TWO_TONES = (0.1, 0.4, 1.0, 0.45, 0.355, 0.45, 1.0, 0.4, 0.1)


def _burst(**kw: object) -> Burst:
    base: dict[str, object] = {
        "t_start": 0.0, "t_end": 546e-6, "freq_hz": 890e6, "bandwidth_hz": 250e3,
        "power_dbfs": -20.0, "snr_db": 30.0, "centre_hz": 890e6, "sample_start": 0,
        "sample_count": 1310, "n_frames": 10, "spectrum": HUMP,
    }  # fmt: skip
    base.update(kw)
    # The test overrides any field by keyword; Burst checks the values, not mypy.
    return Burst(**base)  # type: ignore[arg-type]


def test_shape_rules() -> None:
    assert classify_shape(_burst()) == "gsm"
    # Too weak to measure a band: no shape, whatever its duration and width.
    assert classify_shape(_burst(snr_db=4.0)) == "unknown"
    # A line narrower than GMSK ever is (a tone, a carrier) is not a GSM burst.
    assert classify_shape(_burst(bandwidth_hz=40e3)) == "unknown"
    lte = {"t_end": 1e-3, "bandwidth_hz": 540e3, "spectrum": FLAT_TOP, "n_frames": 19}
    assert classify_shape(_burst(**lte)) == "lte"
    # A long single hump is neither LTE (not flat) nor FSK (no valley).
    assert classify_shape(_burst(**{**lte, "spectrum": HUMP})) == "unknown"
    # Long, narrow, two humps with a deep valley, measured over many frames: FSK, never LTE.
    fsk = {"t_end": 6.7e-3, "bandwidth_hz": 150e3, "spectrum": TWO_TONES, "n_frames": 83}
    burst = _burst(**fsk)
    assert burst.dip_db == pytest.approx(4.5, abs=0.05) and burst.flat == pytest.approx(2 / 9)
    assert classify_shape(burst) == "fsk"
    # The same valley over a handful of frames is scatter, not two tones.
    assert classify_shape(_burst(**{**fsk, "n_frames": 12})) == "unknown"


def test_synthetic_fsk_telegram_is_fsk_and_gsm_lte_keep_their_shapes() -> None:
    rng = np.random.default_rng(7)
    n = int(0.05 * RATE)
    power = synth.power_dbfs_for(25.0, NOISE_DBFS, 150e3, RATE)
    gsm = synth.BurstSpec("gsm", 0.025, synth.GSM_BURST_S, -400e3, power)
    lte_power = synth.power_dbfs_for(25.0, NOISE_DBFS, 540e3, RATE)
    lte = synth.BurstSpec("lte", 0.035, 1e-3, -300e3, lte_power, 3)
    iq = synth.render(rng, RATE, n, NOISE_DBFS, [gsm, lte])
    # A 2-FSK telegram: 100 kchip/s, +-50 kHz (Wireless M-Bus T1), 8 ms, 25 dB over the noise.
    chips = rng.integers(0, 2, 800) * 2 - 1
    per_chip = RATE / 100e3
    length = int(8e-3 * RATE)
    tone = 300e3 + 50e3 * chips[(np.arange(length) / per_chip).astype(int)]
    phase = 2 * np.pi * np.cumsum(tone) / RATE
    amp = math.sqrt(10 ** (power / 10))
    start = int(0.01 * RATE)
    iq[start : start + length] += (amp * np.exp(1j * phase)).astype(np.complex64)
    det = BurstDetector(RATE)
    det.begin_dwell(868e6, 0.0)
    bursts = det.feed(iq, "cf32_le") + det.end_dwell()
    shapes = sorted((round(b.t_start, 3), b.shape) for b in bursts)
    assert shapes == [(0.01, "fsk"), (0.025, "gsm"), (0.035, "lte")], shapes


def test_one_lte_phone_is_one_transmitter_whatever_its_bursts_look_like(tmp_path: Path) -> None:
    """PUCCH slots (0.5 ms, one 180 kHz block, at the carrier's edges) look like GSM bursts;
    the phone's PUSCH grants look like LTE. Both carry one label, the core's presence key."""
    rng = np.random.default_rng(11)
    power = synth.power_dbfs_for(25.0, NOISE_DBFS, 180e3, RATE)
    specs = [
        synth.BurstSpec("lte", 0.005, 0.5e-3, -800e3, power, 1),  # slot 0, lower edge
        synth.BurstSpec("lte", 0.0055, 0.5e-3, 800e3, power, 1),  # slot 1, upper edge
        synth.BurstSpec("lte", 0.015, 1e-3, 0.0, power + 5.0, 6),  # a PUSCH grant
    ]
    iq = synth.render(rng, RATE, int(0.03 * RATE), NOISE_DBFS, specs)
    write_sigmf(tmp_path / "lte", [Segment(0.0, 902.5e6, RATE, iq)])
    (dwell,) = open_recording(tmp_path / "lte.sigmf-meta")
    found = [b for _d, b in detect_dwells([dwell], Counter())]
    assert len(found) == 3
    assert len({b.shape for b in found}) > 1  # a label by shape would have split the phone
    records = list(read_bursts(tmp_path / "lte.sigmf-meta", Counter()))
    assert len(records) == 3 and {r.band for r in records} == {"E-GSM-900 + LTE B8 UL"}
