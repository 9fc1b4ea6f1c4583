"""MemoryDenyWriteExecute=yes is on for every daemon: the libraries they load work under it.

The probe installs the seccomp filter systemd applies for that option and exercises numpy, a
ctypes callback (pyrtlsdr's streaming read), librtlsdr, argon2-cffi, orjson, pydantic-core,
dbus-fast, bleak and scapy. Run on the Pi (aarch64) as well as on CI: libffi's static
trampolines, which make ctypes callbacks work without writable code pages, are per-architecture.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tests.appliance.sandbox import SYSCALLS
from tests.appliance.units import DAEMONS, UNIT_DIR, one, parse_unit
from tests.appliance.wx_probe import PROBES

PROBE = Path(__file__).with_name("wx_probe.py")


@pytest.fixture(scope="module")
def probe_results() -> dict[str, str]:
    if sys.platform != "linux" or platform.machine() not in SYSCALLS:
        pytest.skip(f"the seccomp probe knows no syscall numbers for {platform.machine()}")
    result = subprocess.run(
        [sys.executable, str(PROBE)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_the_filter_is_in_force(probe_results: dict[str, str]) -> None:
    # Without this the other probes would prove nothing.
    assert probe_results["filter-active"] == "ok"


@pytest.mark.parametrize("name", [n for n in PROBES if n != "filter-active"])
def test_library_works_without_writable_code(probe_results: dict[str, str], name: str) -> None:
    outcome = probe_results[name]
    if outcome.startswith("skip"):
        pytest.skip(outcome)
    assert outcome == "ok", f"{name}: {outcome}; turn MemoryDenyWriteExecute off for its unit"


@pytest.mark.parametrize("unit", sorted(DAEMONS))
def test_every_daemon_unit_denies_write_execute(unit: str) -> None:
    assert one(parse_unit(UNIT_DIR / unit), "Service", "MemoryDenyWriteExecute") == "yes"
