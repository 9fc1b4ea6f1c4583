"""One VM boot for the whole kernel suite: the scenarios run inside, the tests judge outside.

Where no VM can start (no qemu, no virtme-ng, no unpacked kernel image) every test here is
skipped with the reason. With ``CHECKPOINT_HARDWARE=1`` (on a Pi) the same scenarios run on the
machine itself against its real adapters (``CHECKPOINT_WIFI_IFACE``, ``CHECKPOINT_BLE_ADAPTER``),
without a VM; those needing simulated peers are then skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kernel.kernel_vm import VM_TIMEOUT_S, Evidence, boot, why_not_bootable

HERE = Path(__file__).resolve().parent
_TIMES: dict[str, float] = {}


def _run_on_hardware(out: Path) -> None:
    cmd = [sys.executable, str(HERE / "radio_scenarios.py"), "--out", str(out), "--hardware"]
    with (out / "scenarios.out").open("w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=VM_TIMEOUT_S, check=False)


@pytest.fixture(scope="session")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evidence]:
    hardware = os.environ.get("CHECKPOINT_HARDWARE") == "1"
    # Judge the evidence an earlier run left (a Pi's, or a VM run being looked into) again.
    kept = os.environ.get("CHECKPOINT_KERNEL_EVIDENCE")
    out = Path(kept) if kept else tmp_path_factory.mktemp("kernel")
    t0 = time.monotonic()
    if kept:
        pass
    elif hardware:
        _run_on_hardware(out)
    else:
        reason = why_not_bootable()
        if reason is not None:
            pytest.skip(f"no kernel VM here: {reason}")
        run = boot(out)
        _TIMES["vm_wall_s"] = round(run.wall_s, 1)
        if not (out / "results.json").exists():
            tail = run.console[-3000:]
            pytest.fail(f"the VM ran no scenario (vng exit {run.returncode}):\n{tail}")
    if not kept:
        _TIMES["suite_wall_s"] = round(time.monotonic() - t0, 1)
    results = json.loads((out / "results.json").read_text())
    for key in ("import_s", "total_s"):
        if key in results:
            _TIMES[f"guest_{key}"] = results[key]
    guest = out / "guest.txt"
    if guest.exists():
        for line in guest.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key.endswith("_s"):
                _TIMES[f"guest_{key}"] = float(value)
    yield Evidence(out, results, hardware)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The kernel suite's times: the VM's own and the scenarios' inside it."""
    if _TIMES:
        parts = ", ".join(f"{k}={v}" for k, v in _TIMES.items())
        terminalreporter.write_line(f"kernel VM times: {parts}")
