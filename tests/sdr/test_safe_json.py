"""Bounded JSON readers: too deep or too large is a one-line error, never a RecursionError."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from scanner import safe_json
from scanner.errors import RecordingError
from scanner.runtime.transport.codec import FrameError, decode_line
from scanner.sources.ble.replay import parse_line
from scanner.sources.sdr.sigmf_io import open_recording, read_meta


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_depth_and_size_bounds() -> None:
    assert safe_json.loads(_nested(safe_json.MAX_DEPTH)) is not None
    with pytest.raises(safe_json.JsonLimitError, match="deeper than 64 levels"):
        safe_json.loads(_nested(safe_json.MAX_DEPTH + 1))
    with pytest.raises(safe_json.JsonLimitError):
        safe_json.loads(_nested(100_000).encode())  # bytes too
    # Brackets inside strings are text, not nesting (escaped quotes included).
    text = json.dumps({"a": "[" * 500 + '\\"{' * 100})
    assert safe_json.loads(text)["a"].startswith("[[[")
    with pytest.raises(safe_json.JsonLimitError, match="larger than the 10-byte limit"):
        safe_json.loads('{"a": 12345}', max_bytes=10)
    # Multi-byte characters count in bytes.
    with pytest.raises(safe_json.JsonLimitError):
        safe_json.loads('"' + "\u00e9" * 6 + '"', max_bytes=10)
    assert isinstance(safe_json.JsonLimitError("x"), ValueError)


def test_load_path_refuses_a_big_file_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text("[" + "1," * 100 + "1]", encoding="utf-8")
    with pytest.raises(safe_json.JsonLimitError, match=r"big\.json is larger"):
        safe_json.load_path(path, max_bytes=64)
    assert len(safe_json.load_path(path)) == 101


def _deep_sigmf(tmp_path: Path, levels: int = 3000) -> Path:
    meta = {"global": {"core:datatype": "cu8", "core:sample_rate": 1e6, "x": None}}
    text = json.dumps(meta).replace("null", _nested(levels))
    path = tmp_path / "deep.sigmf-meta"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "deep.sigmf-data").write_bytes(b"\x80" * 64)
    return path


def test_inspect_sdr_refuses_a_3000_level_sigmf_meta(tmp_path: Path) -> None:
    path = _deep_sigmf(tmp_path)
    with pytest.raises(RecordingError, match="nested deeper than 64 levels"):
        open_recording(path)
    with pytest.raises(RecordingError, match="nested deeper"):
        read_meta(path)
    run = subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", "inspect", "sdr", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "nested deeper than 64 levels" in lines[0], run.stderr
    assert "RecursionError" not in run.stderr


def test_other_readers_are_bounded(tmp_path: Path) -> None:
    # One BLE JSONL line: a counted drop.
    counters: Counter[str] = Counter()
    assert parse_line('{"ts": 1, "x": ' + _nested(3000) + "}", counters) is None
    assert counters["malformed"] == 1
    # A transport line from another process: a framing error, not a crash.
    with pytest.raises(FrameError, match="nested deeper"):
        decode_line(_nested(3000).encode())
    # truth.json of a scenario given to eval: one line, non-zero exit.
    (tmp_path / "truth.json").write_text(_nested(3000), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "scanner.cli.main", "eval", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert "nested deeper than 64 levels" in run.stderr and "Traceback" not in run.stderr
