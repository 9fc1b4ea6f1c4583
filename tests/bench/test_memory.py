"""The appliance memory benchmark: five real daemons on a replayed load, RSS per process."""

from __future__ import annotations

import math
import os

import pytest

from bench import memory


def test_rss_of_this_process_and_of_a_gone_one() -> None:
    assert 1.0 < memory.rss_mb(os.getpid()) < 10_000.0
    assert math.isnan(memory.rss_mb(2**22 + 12345))


def test_heavy_imports_reads_importtime_lines() -> None:
    log = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       120 |        120 |   numpy.core._multiarray_umath",
            "import time:        80 |      90000 | numpy",
            "import time:        10 |         10 |     fastapi.routing",
            "import time:        10 |         10 | scanner.sources.sdr.dsp",
            "a log line that mentions scipy",
        ]
    )
    assert memory.heavy_imports(log) == ["numpy", "fastapi"]


@pytest.mark.slow
def test_short_run_reports_every_process_and_the_all_in_one() -> None:
    # Half a minute of five daemons at full pace: with the soaks (--soak).
    result = memory.run(quick=True)
    assert set(result["processes"]) == set(memory.LAYOUT)
    for name, figures in result["processes"].items():
        assert figures["exit_code"] == 0, name
        assert figures["rss_end_mb"] > 5.0, name
    # The API and the Wi-Fi and BLE capture daemons need neither numpy nor scapy.
    for name in ("api", "capture_wifi", "capture_ble", "core"):
        assert not {"numpy", "scipy", "scapy"} & set(result["processes"][name]["heavy_imports"])
    total = sum(f["rss_end_mb"] for f in result["processes"].values())
    assert result["total_rss_end_mb"] == pytest.approx(total, abs=0.5)
    assert result["all_in_one"]["exit_code"] == 0
