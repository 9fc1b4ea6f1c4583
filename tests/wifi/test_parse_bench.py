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
    # 10,000 frames (quick halves FRAMES) take tshark about 0.5 s beyond its start-up, well
    # above the start-up's run-to-run noise that the per-frame figure subtracts.
    monkeypatch.setattr(wifi_parse, "FRAMES", 20_000)
    result = wifi_parse.run(quick=True)
    assert result["frames"] == 10_000
    assert result["uncached_distinct_probe_bodies"] == 10_000
    assert result["distinct_probe_bodies"] < 10_000
    keys = ["ours_fps", "scapy_fps", "ratio_vs_scapy", "ours_uncached_fps", "scapy_uncached_fps"]
    keys += ["ratio_vs_scapy_uncached", "ours_uncached_python_fps"]
    if result.get("note") != "tshark not installed":
        keys += ["tshark_fps", "ratio_vs_tshark", "tshark_uncached_fps", "ratio_vs_tshark_uncached"]
    for key in keys:
        assert isinstance(result[key], int | float), key
        assert result[key] > 0, key


def test_bench_table_shows_figure_baseline_target_and_verdict() -> None:
    from scanner.cli.bench import table

    results = {
        "wifi_parse": {
            "ratio_vs_tshark_uncached": 12.5,
            "tshark_uncached_fps": 22_000,
            "ratio_vs_tshark": 9.0,
            "tshark_fps": 21_000,
        },
        "sdr_dsp": {"realtime_factor": 31.5, "naive_realtime_factor": 1.6},
    }
    text = table(results, {"wifi_parse": 20.0, "sdr_dsp": 2.0})
    lines = {line.split("  ")[0]: line for line in text.splitlines()}
    distinct = lines["Wi-Fi parse, every probe body distinct"]
    assert "12.5 x tshark" in distinct and "22,000 frames/s tshark" in distinct
    assert ">= 10.0 x tshark" in distinct and distinct.endswith("yes")
    assert lines["SDR burst detector, one core, 2.4 MS/s"].endswith("NO")
    # A figure the benchmark did not report says so rather than vanishing.
    assert "- (not measured)" in lines["Wi-Fi parse vs scapy's dissector"]
    # Benchmarks that did not run have no rows.
    assert not any(line.startswith("Load") for line in lines)
    assert text.rstrip().endswith("took: wifi_parse 20 s, sdr_dsp 2 s")
