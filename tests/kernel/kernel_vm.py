"""Boot one virtme-ng VM on a Debian kernel from a cache folder and run the radio scenarios in it.

The kernel is never installed on the machine: ``.ci/setup`` downloads the Debian kernel package
and unpacks it (``dpkg-deb -x``) into ``~/.cache/checkpoint/kernel/VERSION/``, with its own
``lib/modules``; virtme-ng boots that image with the host's root filesystem read-only (9p, TCG:
no KVM needed) and gives the guest one writable folder for the evidence.

systemd does not run in this VM: virtme-ng's own init starts the scenarios. Its experimental
``--systemd`` boot (virtme-ng 1.x, kernel 6.1) panics on a root without ``/lib/modules``, such
as CI's container, where its init cannot create that folder on the read-only root. The daemons
scenario starts the commands the units run (``checkpoint core``, ``capture wifi``, ``capture
ble``) and stops them with SIGTERM as systemd does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
KERNEL_CACHE = Path(
    os.environ.get("CHECKPOINT_KERNEL_CACHE", Path.home() / ".cache" / "checkpoint" / "kernel")
)
# The whole guest run (boot, imports, every scenario) under TCG on 2 shared cores: measured at
# a few minutes; past this the VM is hung, not slow.
VM_TIMEOUT_S = 900.0


@dataclass(frozen=True, slots=True)
class VmRun:
    """What one boot left behind."""

    out: Path
    returncode: int
    wall_s: float
    console: str


def find_kernel(cache: Path = KERNEL_CACHE) -> Path | None:
    """The newest unpacked kernel image in the cache that has its modules next to it."""
    images = []
    for version_dir in cache.glob("*"):
        for image in version_dir.glob("boot/vmlinuz-*"):
            version = image.name.removeprefix("vmlinuz-")
            if (version_dir / "lib" / "modules" / version / "modules.dep").exists():
                images.append(image)
    # Newest by version numbers ("6.1.0-100" after "6.1.0-57"), not by string.
    return max(images, key=lambda p: [int(n) for n in re.findall(r"\d+", p.name)], default=None)


def vng_command() -> str | None:
    """virtme-ng's command, from this interpreter's environment first (pip installs it there)."""
    local = Path(sys.executable).parent / "vng"
    if local.exists():
        return str(local)
    return shutil.which("vng")


def why_not_bootable() -> str | None:
    """None when a VM can boot here, else the reason (for the skip message)."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (.ci/setup installs qemu-system-x86)"
    if vng_command() is None:
        return "virtme-ng is not installed (pip install virtme-ng; .ci/setup does)"
    if shutil.which("busybox") is None:
        return "busybox-static is not installed (virtme-ng builds its initramfs with it)"
    if find_kernel() is None:
        return f"no unpacked kernel image under {KERNEL_CACHE} (.ci/setup unpacks one)"
    return None


def boot(out: Path) -> VmRun:
    """Run guest.sh in one VM; the evidence lands in ``out``."""
    image = find_kernel()
    vng = vng_command()
    if image is None or vng is None:
        raise RuntimeError(why_not_bootable() or "cannot boot")
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # vng starts virtme-run by name: it lives next to vng in the virtualenv.
    env["PATH"] = f"{Path(vng).parent}{os.pathsep}{env.get('PATH', '')}"
    guest = f"{HERE / 'guest.sh'} {out} {sys.executable}"
    cmd = [
        vng,
        # KVM is not used: a nested guest hangs at boot on CI's machines; TCG is slower but works.
        "--disable-kvm",
        "--force-9p",
        "--cpus",
        "2",
        "--memory",
        "2G",
        "--user",
        "root",
        "--run",
        str(image),
        "--rwdir",
        str(out),
        "--exec",
        guest,
    ]
    t0 = time.monotonic()
    done = subprocess.run(
        cmd,
        cwd=out,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=VM_TIMEOUT_S,
        check=False,
    )
    wall = time.monotonic() - t0
    (out / "vng.log").write_text(f"{' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    return VmRun(out, done.returncode, wall, done.stdout + done.stderr)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the scenarios left: results.json and the files next to it."""

    out: Path
    results: dict[str, Any]
    hardware: bool

    def scenario(self, name: str) -> dict[str, Any]:
        """One scenario's entry; skips when it does not apply, fails when it broke."""
        entry = self.results.get("scenarios", {}).get(name)
        if entry is None:
            pytest.fail(f"scenario {name} did not run; see {self.out}/scenarios.out")
        if entry["status"] == "not_applicable":
            pytest.skip(entry.get("reason", "not applicable here"))
        if entry["status"] == "running":
            log = self.out / "scenarios.out"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"scenario {name} never finished (the VM ended or timed out):\n{tail}")
        if entry["status"] != "done":
            pytest.fail(f"scenario {name} {entry['status']}: {entry.get('error', '')}")
        return dict(entry)

    def records(self, name: str) -> list[dict[str, Any]]:
        """The JSON lines a scenario's sink wrote."""
        path = self.out / name
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
