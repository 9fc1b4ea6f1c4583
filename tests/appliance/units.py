"""Reading systemd unit files for the appliance tests, and a stage root to verify them in."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT_DIR = ROOT / "systemd"
DAEMONS = {
    "checkpoint-core.service": ["core"],
    "checkpoint-api.service": ["api"],
    "checkpoint-capture-wifi.service": ["capture", "wifi"],
    "checkpoint-capture-ble.service": ["capture", "ble"],
    "checkpoint-capture-sdr.service": ["capture", "sdr"],
}
CAPTURES = [name for name in DAEMONS if "capture" in name]
# Paths the units execute; they exist only on a provisioned Pi.
EXECUTABLES = ("/opt/checkpoint/venv/bin/checkpoint", "/opt/checkpoint/libexec/wifi-monitor")


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections -> (key, value) in file order; keys repeat in systemd (SystemCallFilter=...)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None or "=" not in line:
            raise ValueError(f"{path.name}: stray line {raw!r}")
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str | None:
    found = values(unit, section, key)
    return found[-1] if found else None


def words(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> set[str]:
    """A space-separated list option, accumulated over repeats as systemd does."""
    out: set[str] = set()
    for value in values(unit, section, key):
        if value == "":
            out.clear()  # an empty assignment resets the list
        out.update(value.split())
    return out


def make_stage_root(stage: Path, units: list[Path]) -> Path:
    """A root for ``systemd-analyze --root``: our units, the host's own units and stub binaries.

    ``--root`` resolves everything under the stage: the host's /usr/lib/systemd/system is copied in
    so our units' dependencies (sysinit.target, dbus.service...) resolve, and each executable our
    units name is a stub script, because verify checks that ExecStart= points at an executable.
    """
    shutil.copytree(
        Path("/usr/lib/systemd/system"),
        stage / "usr/lib/systemd/system",
        symlinks=True,
        ignore_dangling_symlinks=True,
    )
    unit_dir = stage / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for unit in units:
        shutil.copy(unit, unit_dir / unit.name)
    for exe in EXECUTABLES:
        stub = stage / exe.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return stage
