"""The appliance memory benchmark: five real daemons on a replayed load, RSS per process."""

from __future__ import annotations

import math
import mmap
import os
from collections import Counter
from pathlib import Path

import pytest

from bench import memory
from scanner.observations import BleAdvert, SdrBurst, WifiFrame
from scanner.sources.replay import iter_scenario


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
            "import time:        30 |        900 | fastapi",
            "import time:        10 |         10 | scanner.sources.sdr.dsp",
            # An import that failed: the package never loaded, only the attempt is timed.
            "import time:         6 |          6 |     scipy.fftpack",
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
    # The SDR daemon's FFT is FFTW where pyfftw is installed, without scipy (29 MB).
    sdr = result["processes"]["capture_sdr"]["heavy_imports"]
    assert "pyfftw" not in sdr or "scipy" not in sdr
    total = sum(f["rss_end_mb"] for f in result["processes"].values())
    assert result["total_rss_end_mb"] == pytest.approx(total, abs=0.5)
    assert result["all_in_one"]["exit_code"] == 0


def test_churn_scenario_replays_new_addresses_every_second_and_a_visitor(tmp_path: Path) -> None:
    scenario = memory.write_churn_scenario(tmp_path / "churn", 20.0)
    counters: Counter[str] = Counter()
    records = list(iter_scenario(scenario, counters))
    wifi = [r for r in records if isinstance(r, WifiFrame)]
    ble = [r for r in records if isinstance(r, BleAdvert)]
    assert len(wifi) == 20 * memory.CHURN_WIFI_RATE
    assert len(ble) == 20 * memory.CHURN_BLE_RATE
    assert counters["wifi_records"] == len(wifi)  # every frame parses
    # Each second brings its own crowd: no MAC (or address) of one second is heard in another.
    seconds: dict[str, set[int]] = {}
    for r in wifi:
        seconds.setdefault(r.mac, set()).add(int(r.ts - wifi[0].ts))
    crowd = {m for m in seconds if m.startswith("da:")}
    assert len(crowd) == pytest.approx(20 * memory.CHURN_WIFI_RATE / 20, rel=0.01)
    assert all(len(seconds[m]) <= 2 for m in crowd)  # (a burst may straddle a second)
    assert len({r.address for r in ble}) > 20 * 100 * 0.9
    # The visitor (5 s to 15 s into the period) at the gate's level, the crowd far outside.
    visitor = [r for r in wifi if r.mac.startswith("02:aa:bb")]
    assert visitor and all(r.rssi_dbm == -42 for r in visitor)
    assert {int(r.ts - wifi[0].ts) for r in visitor} == set(range(5, 15))
    assert max(r.rssi_dbm or 0 for r in wifi if r.mac in crowd) <= -66
    assert any(isinstance(r, SdrBurst) for r in records)  # the bundled uplink bursts


def test_recording_pages_are_left_out_of_the_rss(tmp_path: Path) -> None:
    path = tmp_path / "big.pcap"
    path.write_bytes(b"\x01" * (8 << 20))
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        assert sum(buf[i] for i in range(0, len(buf), 4096)) == (8 << 20) // 4096  # touched
        mapped = memory.recording_mb(os.getpid())
        assert 7.5 < mapped < 8.5
        assert memory.appliance_mb(os.getpid()) == pytest.approx(
            memory.rss_mb(os.getpid()) - mapped, abs=1.0
        )
    assert memory.recording_mb(2**22 + 12345) == 0.0
