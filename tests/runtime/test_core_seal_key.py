"""The core keys the alert history with the sealing key: a service without its key is refused
at start with one line and exit status 2 (which its unit does not restart), not a traceback
at the first alert."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.export.seal_key import write_keys

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "checkpoint-core.service"


def _core(cfg: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", "core", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "checkpoint.toml"
    path.write_text(f'[site]\nstate_dir = "{tmp_path / "state"}"\n')
    return path


def test_a_service_handed_no_key_exits_2_with_one_line(tmp_path: Path, cfg: Path) -> None:
    # systemd gave the service a credentials directory, but no seal.key in it.
    creds = tmp_path / "creds"
    creds.mkdir()
    result = _core(cfg, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("checkpoint core: no sealing key at ")
    assert "LoadCredential=seal.key" in lines[0]
    assert "Traceback" not in result.stderr
    # ...and no key was invented beside the store.
    assert not (tmp_path / "state" / "seal.key").exists()


def test_a_key_others_can_read_exits_2(tmp_path: Path, cfg: Path) -> None:
    key = tmp_path / "seal.key"
    write_keys(key, [bytes(32)])
    key.chmod(0o644)
    result = _core(cfg, {"CHECKPOINT_SEAL_KEY": str(key)})
    assert result.returncode == 2, result.stderr
    assert "is readable by others" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_core_unit_is_handed_the_key_and_not_restarted_without_it() -> None:
    text = UNIT.read_text()
    assert "LoadCredential=seal.key:/etc/checkpoint/seal.key" in text
    assert "RestartPreventExitStatus=2" in text
