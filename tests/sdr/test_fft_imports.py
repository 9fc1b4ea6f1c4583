"""The SDR detector's FFT library is loaded without what it does not use."""

from __future__ import annotations

import numpy as np
import pytest

from scanner.sources.sdr import dsp
from tests.helpers.fresh import probe_json

_PROBE = """
import json, sys
from scanner.sources.sdr.dsp import _load_fft
name, _ = _load_fft()
print(json.dumps({"name": name, "scipy": "scipy" in sys.modules}))
"""


def test_fftw_is_loaded_without_scipy() -> None:
    # pyfftw's own __init__ would import scipy.fftpack (29 MB of RSS) for interfaces the
    # detector never calls; a fresh interpreter shows whether it still does.
    loaded = probe_json(_PROBE)
    if loaded["name"] != "fftw":
        pytest.skip("pyfftw is not installed here")
    assert loaded["scipy"] is False


def test_fftw_rows_match_numpy_and_scipy_still_imports() -> None:
    try:
        name, fft = dsp._load_fft("fftw")
    except ImportError:
        pytest.skip("pyfftw is not installed here")
    assert name == "fftw"
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((4, 256)) + 1j * rng.standard_normal((4, 256))).astype(np.complex64)
    expected = np.fft.fft(x, axis=1)
    got = fft(x.copy())
    assert np.allclose(got, expected, atol=1e-3)
    # scipy is hidden only while pyfftw loads: a later import of it works.
    import scipy.fftpack

    assert scipy.fftpack.fft is not None
