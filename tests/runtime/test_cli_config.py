"""`checkpoint run|core|capture|api` refuse a bad config with one clear line and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CASES = {
    "not_toml": ("[core\nwindow_s = 3", "not valid TOML"),
    "unknown_section": ("[cor]\nwindow_s = 3\n", "unknown section(s) cor"),
    "unknown_core_key": ("[core]\nwindow_sec = 3\n", "window_sec"),
    "bad_core_value": ('[core]\nwindow_s = "long"\n', "window_s"),
    "bad_api_port": ("[api]\nport = 99999\n", "port"),
    "tls_half": ('[api]\ncertfile = "/etc/hostname"\n', "certfile and keyfile"),
    "bad_transport": ("[transport]\nqueue_size = 0\n", "queue_size"),
    "bad_store_budget": ('[store]\nbudget_mb = "lots"\n', "[store]"),
    "bad_retention_every": ("[store]\nretention_every_s = -1\n", "retention_every_s"),
}


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_with_a_bad_config_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    cfg = tmp_path / "checkpoint.toml"
    cfg.write_text(f'[site]\nstate_dir = "{tmp_path}"\n' + text)
    result = run_cli("run", "--config", str(cfg))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("checkpoint run: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    for command in (["run"], ["core"], ["api"], ["capture", "wifi"]):
        result = run_cli(*command, "--config", str(tmp_path / "absent.toml"))
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0
        assert "cannot read config" in result.stderr


def test_capture_of_a_radio_the_config_does_not_enable_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[site]\nstate_dir = "{tmp_path}"\n[ble]\nenabled = false\n')
    result = run_cli("capture", "ble", "--config", str(cfg))
    assert result.returncode == 2
    assert "[ble] is missing or has enabled = false" in result.stderr


def test_api_on_a_busy_port_exits_2(tmp_path: Path) -> None:
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[site]\nstate_dir = "{tmp_path}"\n[api]\nhost = "127.0.0.1"\nport = {port}\n'
        )
        result = run_cli("api", "--config", str(cfg))
        assert result.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    finally:
        busy.close()
