"""SdrOptions refuse bad values however they are built, so the live source never sees them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scanner.clock import ManualClock
from scanner.config import ConfigError
from scanner.observations import SourceEvent
from scanner.runtime.build import source_builder
from scanner.sources.sdr.live import SdrSource
from scanner.sources.sdr.options import DetectorParams, SdrOptions, SweepOptions

# (detector field, bad value, what the message must name)
BAD_DETECTOR: tuple[tuple[str, Any, str], ...] = (
    ("fft_size", 100, "fft_size"),
    ("half_channel_bins", 0, "half_channel_bins"),
    ("block_frames", 7, "block_frames"),
    ("pfa", 1.5, "pfa"),
    ("floor_alpha", 0.0, "floor_alpha"),
    ("min_duration_s", float("nan"), "min_duration_s"),
)


def _discard(_event: SourceEvent) -> None:
    """A sink for sources that are built but never started."""


@pytest.mark.parametrize(("name", "value", "named"), BAD_DETECTOR)
def test_direct_construction_refuses_bad_detector(name: str, value: Any, named: str) -> None:
    detector = DetectorParams(**{name: value})
    with pytest.raises(ValueError, match=rf"\[sdr\]: .*{named}"):
        SdrOptions(sensor="sdr", detector=detector)
    # replace() runs __post_init__ too: good options cannot be edited into bad ones.
    with pytest.raises(ValueError, match=named):
        dataclasses.replace(SdrOptions(sensor="sdr"), detector=detector)


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"transport": "serial"}, "transport"),
        ({"rate": 10e6}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"queue_chunks": 0}, "queue_chunks"),
        ({"read_bytes": 1}, "read_bytes"),
        ({"region": "mars"}, "region"),
        ({"bands": ("LTE B99 UL",)}, "band"),
    ],
)
def test_direct_construction_refuses_bad_source_options(kw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SdrOptions(sensor="sdr", **kw)


def test_config_path_names_the_detector_key() -> None:
    with pytest.raises(ValueError, match=r"\[sdr\]: fft_size"):
        SdrOptions.from_mapping({"detector": {"fft_size": 100}})


def test_runner_reports_a_config_error_not_a_crash() -> None:
    # The runner builds every source once at startup; a bad detector key becomes a ConfigError
    # naming the section and key (the daemon exits with that message), not a traceback later.
    with pytest.raises(ConfigError, match=r"\[sdr\].*half_channel_bins"):
        source_builder("sdr", {"detector": {"half_channel_bins": 0}}, clock=ManualClock())


def test_good_direct_options_build_a_source() -> None:
    opts = SdrOptions(
        sensor="sdr-mast",
        transport="rtl_tcp",
        rate=1.0e6,
        centres_mhz=(890.0,),
        sweep=SweepOptions(dwell_s=0.1),
        detector=DetectorParams(fft_size=64, half_channel_bins=2),
    )
    src = SdrSource(opts, _discard)
    assert src.state == "stopped"  # built, not started, and not in fault
    assert (src.detector.n, src.detector.h) == (64, 2)


def test_options_load_without_numpy() -> None:
    """Validating or showing an [sdr] section must not pull the DSP stack into a process."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from scanner.sources.sdr.options import SdrOptions\n"
        "opts = SdrOptions.from_mapping({'region': 'us'})\n"
        "assert opts.plan().region == 'us'\n"
        "print('numpy' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip() == "False"
