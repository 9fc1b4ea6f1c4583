"""Scenario directories as FORMATS.md describes them: several sensors with their placement,
the scenario's own site.toml, and the handset counts per minute."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scanner.cli.main import main
from scanner.config import ConfigError
from scanner.demo import SCENARIO
from scanner.sim.run import replay_fast
from scanner.sinks.ndjson import CountsSink

RECORDINGS = ("wifi.pcap", "ble.jsonl", "sdr")


def _copy_recordings(to: Path) -> None:
    to.mkdir(parents=True)
    for name in RECORDINGS:
        src = SCENARIO / name
        if src.is_dir():
            shutil.copytree(src, to / name)
        else:
            shutil.copy(src, to / name)


def _several(tmp_path: Path, placements: dict[str, str]) -> Path:
    """The demo's recordings as heard by each named sensor, in the several-sensor layout."""
    out = tmp_path / "site"
    for name in placements:
        _copy_recordings(out / "sensors" / name)
    for name in ("truth.json", "allowlist.json"):
        shutil.copy(SCENARIO / name, out / name)
    sensors = "".join(
        f'[[sensors]]\nname = "{n}"\nplacement = "{p}"\n\n' for n, p in placements.items()
    )
    (out / "site.toml").write_text(sensors, encoding="utf-8")
    return out


def _alarms(lines: list[dict[str, object]]) -> list[float]:
    return [float(str(ln["ts"])) for ln in lines if ln["alarm"] is True]


def test_a_sensor_inside_alarms_as_the_single_sensor_layout_does(tmp_path: Path) -> None:
    single = replay_fast(SCENARIO)
    several = replay_fast(_several(tmp_path, {"node-in": "inside"}))
    assert _alarms(several.lines) == _alarms(single.lines)
    assert len(_alarms(single.lines)) >= 4
    # Each sensor's records carry its name (its health row is by that name).
    assert several.records == single.records


def test_a_sensor_outside_never_puts_a_phone_in_the_zone_on_its_own(tmp_path: Path) -> None:
    result = replay_fast(_several(tmp_path, {"street": "outside"}))
    assert result.records > 1000
    assert [ln for ln in result.lines if ln["kind"] == "handset"] == []
    assert result.stats.counters["outside_sensor_records"] > 1000
    # Beside a sensor inside, the outside one is the reference the inside level is compared
    # with, copy by copy of each transmission, and every alert says so.
    both = replay_fast(_several(tmp_path / "b", {"node-in": "inside", "street": "outside"}))
    assert both.stats.counters["placed_pairs"] > 1000
    handsets = [ln for ln in both.lines if ln["kind"] == "handset"]
    assert handsets
    for line in handsets:
        assert all("vs street (same transmission)" in r for r in line["reasons"])


def test_site_toml_core_settings_reach_the_core(tmp_path: Path) -> None:
    out = tmp_path / "s"
    _copy_recordings(out)
    shutil.copy(SCENARIO / "truth.json", out / "truth.json")
    # The installer allowlisted every phone that would alert: nothing may alarm.
    entries = "".join(
        f'  {{match = "mac", value = "{mac}", label = "issued"}},\n'
        for mac in _macs_that_alert(SCENARIO)
    )
    (out / "site.toml").write_text(f"[core]\nallowlist = [\n{entries}]\n", encoding="utf-8")
    assert [ln for ln in replay_fast(out).lines if ln["alarm"] and "wifi" in ln["sensors"]] == []
    (out / "site.toml").write_text("[core]\nno_such_key = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no_such_key"):
        replay_fast(out)


def _macs_that_alert(scenario: Path) -> list[str]:
    from collections import Counter

    from scanner.observations import WifiFrame
    from scanner.sources.replay import iter_scenario

    macs = Counter(e.mac for e in iter_scenario(scenario, Counter()) if isinstance(e, WifiFrame))
    return sorted(macs)


def test_counts_are_handsets_per_minute(tmp_path: Path) -> None:
    lines: list[dict[str, object]] = []
    replay_fast(SCENARIO, sinks=[CountsSink(lines.append)])
    truth = json.loads((SCENARIO / "truth.json").read_text())
    minutes = int(truth["duration_s"] // 60)
    assert len(lines) >= minutes
    starts = [float(str(ln["ts"])) for ln in lines]
    assert starts == sorted(starts) and all(t % 60 == 0 for t in starts)
    for ln in lines:
        assert 0 <= int(str(ln["in_zone"])) <= int(str(ln["heard"]))
    # Four visitors one after the other, at most two at once: never more than two inside.
    inside = [int(str(ln["in_zone"])) for ln in lines]
    assert max(inside) == 2 and min(inside[: minutes - 1]) >= 1
    # Nine phones pass or visit; a phone's Wi-Fi and Bluetooth may be counted apart while
    # it is outside (nothing joins them there), never more than twice over.
    assert max(int(str(ln["heard"])) for ln in lines) <= 2 * 9


def test_replay_counts_option_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "counts.ndjson"
    assert main(["replay", str(SCENARIO), "--fast", "--counts", str(out)]) == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert set(first) == {"ts", "in_zone", "heard"}


def test_sensors_table_is_checked() -> None:
    from scanner.config import parse_config
    from scanner.runtime.build import outside_sensors

    config = parse_config(
        '[[sensors]]\nname = "in"\nplacement = "inside"\n\n'
        '[[sensors]]\nname = "street"\nplacement = "outside"\nclock_offset_s = -1.5\n'
    )
    assert [(s.name, s.placement, s.clock_offset_s) for s in config.sensors] == [
        ("in", "inside", 0.0),
        ("street", "outside", -1.5),
    ]
    assert outside_sensors(config) == frozenset({"street"})
    for bad, why in (
        ('[[sensors]]\nname = "x"\nplacement = "roof"\n', "placement"),
        ('[[sensors]]\nplacement = "gate"\n', "needs a name"),
        ('[[sensors]]\nname = "x"\n[[sensors]]\nname = "x"\n', "named twice"),
        ("sensors = 3\n", "array of tables"),
    ):
        with pytest.raises(ConfigError, match=why):
            parse_config(bad)
