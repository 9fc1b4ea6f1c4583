"""Every number of the configuration finite and in range, every identifier well formed, refused
at load time with one line naming the key: for ``parse_config`` (which ``checkpoint run``, ``core``,
``api``, ``capture`` and a scenario's site.toml all go through) and for the daemons' command line.

Reproduces the finding: ``window_s = nan`` and ``enter_dbm = nan`` were accepted, and that radio
never alarmed again; allowlist values that were not identifiers were taken as they were.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from api.settings import ApiSettings, SettingsError
from scanner.config import ConfigError, parse_config

# (config text, what the one-line error must name)
BAD = {
    "core window nan": ("[core]\nwindow_s = nan\n", "[core] window_s = nan"),
    "core window inf": ("[core]\nwindow_s = inf\n", "[core] window_s = inf"),
    "core window negative": ("[core]\nwindow_s = -8.0\n", "[core] window_s"),
    "core window a year": ("[core]\nwindow_s = 31536000.0\n", "[core] window_s"),
    "core samples zero": ("[core]\nmin_samples = 0\n", "[core] min_samples"),
    "core samples fractional": ("[core]\nenter_samples = 2.5\n", "[core] enter_samples"),
    "core fraction over 1": ("[core]\nambient_min_fraction = 1.5\n", "ambient_min_fraction"),
    "core boolean number": ("[core]\nabsent_s = true\n", "[core] absent_s"),
    "zone enter nan": ("[core.zone.wifi]\nenter_dbm = nan\n", "zone.wifi.enter_dbm = nan"),
    "zone exit -inf": (
        "[core.zone.ble]\nenter_dbm = -60.0\nexit_dbm = -inf\n",
        "zone.ble.exit_dbm = -inf",
    ),
    "zone rssi positive": ("[core.zone.wifi]\nenter_dbm = 55.0\n", "core.zone.wifi] enter_dbm"),
    "zone sdr snr negative": ("[core.zone.sdr]\nenter_dbm = -31.0\n", "core.zone.sdr] enter_dbm"),
    "sensor offset nan": ("[core.sensor_offsets_db]\nwifi = nan\n", "sensor_offsets_db.wifi"),
    "sensor offset huge": ("[core.sensor_offsets_db]\nwifi = 400.0\n", "sensor_offsets_db.wifi"),
    "tracker key nan": ("[core]\nwifi_seq_window_s = nan\n", "wifi_seq_window_s = nan"),
    "allowlist mac": (
        '[core]\nallowlist = [{match = "mac", value = "not-a-mac"}]\n',
        "allowlist[0].value",
    ),
    "allowlist mac short": (
        '[core]\nallowlist = [{match = "mac", value = "aa:bb:cc:dd:ee"}]\n',
        "allowlist[0].value",
    ),
    "allowlist irk": (
        '[core]\nallowlist = [{match = "ble_identity", value = "irk:1234"}]\n',
        "allowlist[0].value",
    ),
    "allowlist fingerprint": (
        '[core]\nallowlist = [{match = "fingerprint", value = "<script>"}]\n',
        "allowlist[0].value",
    ),
    "allowlist label control": (
        '[core]\nallowlist = [{match = "mac", value = "aa:bb:cc:dd:ee:ff", label = "a\\u0007"}]\n',
        "allowlist[0].label",
    ),
    "api session nan": ("[api]\nsession_ttl_s = nan\n", "[api] session_ttl_s = nan"),
    "api connections zero": ("[api]\nmax_connections = 0\n", "[api] max_connections"),
    "api head timeout inf": ("[api]\nhead_timeout_s = inf\n", "[api] head_timeout_s = inf"),
    "api token ttl negative": ("[api]\ntoken_ttl_s = -1.0\n", "[api] token_ttl_s"),
    "api rate nan": ("[api]\nrate_per_s = nan\n", "[api] rate_per_s = nan"),
    "api allowed host": ('[api]\nallowed_hosts = ["bad host!"]\n', "allowed_hosts[0]"),
    "api trusted client": ('[api]\ntrusted_clients = ["10.0.0.300"]\n', "trusted_clients[0]"),
    "wifi dwell nan": ("[wifi]\ndwell_ms = nan\n", "[wifi] dwell_ms = nan"),
    "wifi queue zero": ("[wifi]\nqueue_size = 0\n", "[wifi] queue_size"),
    "ble silence inf": ("[ble]\nsilence_after_s = inf\n", "[ble] silence_after_s = inf"),
    "sdr rate nan": ("[sdr]\nrate = nan\n", "[sdr] rate = nan"),
    "sdr rate absurd": ("[sdr]\nrate = 1e12\n", "[sdr] rate"),
    "sdr ppm absurd": ("[sdr]\nppm = 100000\n", "[sdr] ppm"),
    "sdr gain nan": ("[sdr]\ngain_db = nan\n", "[sdr] gain_db = nan"),
    "sdr detector nan": ("[sdr]\npfa = nan\n", "[sdr] pfa = nan"),
    "sdr sensor name": ('[sdr]\nsensor = "sdr one/../x"\n', "[sdr] sensor"),
    "transport queue huge": ("[transport]\nqueue_size = 100000000000\n", "[transport] queue_size"),
    "store budget nan": ("[store]\nbudget_mb = nan\n", "[store] budget_mb = nan"),
    "store days negative": ("[store]\nsightings_days = -3\n", "[store] sightings_days"),
    "site name control": ('[site]\nname = "gate\\u001b[31m"\n', "[site] name"),
    "sensor name": (
        '[[sensors]]\nname = "in side"\nplacement = "inside"\n',
        "[sensors][0].name",
    ),
    "sensor clock offset a week": (
        '[[sensors]]\nname = "gate"\nplacement = "gate"\nclock_offset_s = 604800.0\n',
        "clock_offset_s = 604800.0: out of range",
    ),
    "sensor clock offset nan": (
        '[[sensors]]\nname = "gate"\nplacement = "gate"\nclock_offset_s = nan\n',
        "= nan",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_value_is_refused_naming_its_key(case: str) -> None:
    text, named = BAD[case]
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    message = str(err.value)
    assert named in message, message
    assert "\n" not in message


def test_the_shipped_example_and_ordinary_values_pass() -> None:
    example = Path(__file__).resolve().parents[2] / "firmware" / "checkpoint.toml.example"
    parse_config(example.read_text())
    parse_config(
        "[core]\nwindow_s = 8\nambient_min_fraction = 0.7\n"
        "allowlist = [{match = 'mac', value = 'AA:BB:CC:DD:EE:FF', label = 'tablet'},"
        " {match = 'ble_identity', value = 'irk:0123456789abcdef0123456789ABCDEF'},"
        " {match = 'ble_identity', value = 'E8:D0:3C:0C:48:E8'}]\n"
        "[core.zone.wifi]\nenter_dbm = -55\nexit_dbm = -59\n"
        "[core.zone.sdr]\nenter_dbm = 31\n"
        "[api]\nallowed_hosts = ['gate-north.example.mil', '10.20.0.5']\n"
        "trusted_clients = ['127.0.0.0/8', '::1', '10.20.0.0/24']\n"
        "[sdr]\ngain_db = 'auto'\nrate = 2.4e6\n"
    )


def test_api_settings_built_in_code_are_checked_too(tmp_path: Path) -> None:
    settings = ApiSettings(store_path=str(tmp_path / "c.db"), session_ttl_s=float("nan"))
    with pytest.raises(SettingsError, match="session_ttl_s = nan"):
        settings.check_ranges()
    with pytest.raises(SettingsError, match="token_ttl_s"):
        ApiSettings(store_path="", token_ttl_s=400 * 86400.0).check_ranges()


@pytest.mark.parametrize("command", [["run"], ["core"], ["api"], ["capture", "wifi"]])
def test_daemons_refuse_nan_with_one_line_and_status_2(tmp_path: Path, command: list[str]) -> None:
    cfg = tmp_path / "checkpoint.toml"
    cfg.write_text(
        f'[site]\nstate_dir = "{tmp_path}"\n[wifi]\ninterface = "mon0"\n'
        "[core.zone.wifi]\nenter_dbm = nan\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", *command, "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "zone.wifi.enter_dbm = nan: not a finite number" in lines[0]
