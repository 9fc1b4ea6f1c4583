"""The Wi-Fi parse benchmark: its uncached capture defeats the body cache, and it reports both."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import wifi_parse
from scanner.sources.wifi.dot11 import clear_caches
from scanner.sources.wifi.replay import read_frames


def test_unique_capture_is_the_same_crowd_with_every_body_distinct(tmp_path: Path) -> None:
    frames = 3_000
    cached = tmp_path / "cached.pcap"
    unique = tmp_path / "unique.pcap"
    cached_distinct = wifi_parse.write_capture(cached, frames)
    unique_distinct = wifi_parse.write_capture(unique, frames, unique_bodies=True)
    # The cached capture repeats bodies; the uncached one never does.
    assert cached_distinct < frames // 2
    assert unique_distinct == frames
    clear_caches()
    counters: Counter[str] = Counter()
    a = list(read_frames(cached, counters))
    b = list(read_frames(unique, counters))
    # Every record read and parsed: no drop reason counted.
    assert counters == Counter(records=2 * frames)
    assert len(a) == len(b) == frames
    # Same phones, sequence numbers, signal and channel frame by frame: only the body differs.
    assert [(f.mac, f.seq, f.rssi_dbm, f.freq_mhz, f.ssid) for f in a] == [
        (f.mac, f.seq, f.rssi_dbm, f.freq_mhz, f.ssid) for f in b
    ]


def test_run_reports_cached_and_uncached_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    # A smaller capture keeps the test fast; the rates are only checked to be real measurements.
    monkeypatch.setattr(wifi_parse, "FRAMES", 4_000)
    result = wifi_parse.run(quick=True)
    assert result["frames"] == 4_000
    assert result["uncached_distinct_probe_bodies"] == 4_000
    assert result["distinct_probe_bodies"] < 4_000
    keys = ["ours_fps", "scapy_fps", "ratio_vs_scapy", "ours_uncached_fps", "scapy_uncached_fps"]
    keys.append("ratio_vs_scapy_uncached")
    if result.get("note") != "tshark not installed":
        keys += ["tshark_fps", "ratio_vs_tshark", "tshark_uncached_fps", "ratio_vs_tshark_uncached"]
    for key in keys:
        assert isinstance(result[key], int | float), key
        assert result[key] > 0, key
