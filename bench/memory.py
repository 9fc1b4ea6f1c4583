"""Appliance memory: the systemd layout's five processes on a replayed load, RSS of each and total.

As ``systemd/`` runs the appliance: ``checkpoint capture wifi``, ``capture ble`` and ``capture
sdr`` (each replaying its radio's recording from a scenario directory, looping, ``--speed``
times real time), ``checkpoint core`` and ``checkpoint api``, each its own process, joined by
the core's Unix socket and the store. Every process's resident set size is read from /proc once
a second (every 5 s in the soak); after a warm-up (the first fifth of the run: imports, caches,
trackers filling) the slope says whether it is flat. Then the all-in-one process alone:
``checkpoint demo``, the same components in one process on the same recording (``checkpoint
run`` is that too, but with live radios, which a machine without them cannot start).

Each process runs with ``-X importtime``; the heavy packages it imported (numpy, scipy, scapy,
fastapi, ...) are listed per process, so what a process loads without needing shows here.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.load import slope_per_min

SCENARIO = Path(__file__).resolve().parent.parent / "scanner" / "demo" / "scenario"
# The bundled scenario is a quiet gate; eight times its pace is a busy one, and a 6-minute
# recording then loops every 45 s, so the soak sees many loops (a leak per loop would show).
SPEED = 8.0
WARMUP_FRACTION = 0.2
LAYOUT: dict[str, list[str]] = {
    "core": ["core"],
    "api": ["api"],
    "capture_wifi": ["capture", "wifi"],
    "capture_ble": ["capture", "ble"],
    "capture_sdr": ["capture", "sdr"],
}
# Packages worth a line when a process imports them: each costs megabytes of RSS.
HEAVY = (
    "numpy",
    "scipy",
    "scapy",
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "anyio",
    "bleak",
    "dbus_fast",
    "sigmf",
    "rtlsdr",
    "httpx",
    "argon2",
)


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB, from /proc (NaN once it is gone)."""
    try:
        with Path(f"/proc/{pid}/status").open() as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return math.nan
    return math.nan


def heavy_imports(log: str) -> list[str]:
    """The heavy packages named in ``-X importtime`` lines of ``log`` (top-level names)."""
    found: set[str] = set()
    for line in log.splitlines():
        if not line.startswith("import time:"):
            continue
        name = line.rsplit("|", 1)[-1].strip()
        top = name.split(".", 1)[0]
        if top in HEAVY:
            found.add(top)
    return sorted(found, key=HEAVY.index)


def _config(workdir: Path, port: int) -> Path:
    config = workdir / "checkpoint.toml"
    config.write_text(
        f'[site]\nstate_dir = "{workdir}"\n'
        f'[transport]\nsocket = "{workdir / "core.sock"}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    return config


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(workdir: Path, name: str, args: list[str]) -> subprocess.Popen[bytes]:
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "scanner.cli.main", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, int | None]:
    codes: dict[str, int | None] = {}
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            codes[name] = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            codes[name] = proc.wait()
    return codes


def _sample(
    procs: dict[str, subprocess.Popen[bytes]], seconds: float, every: float
) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {name: [] for name in procs}
    started = time.monotonic()
    next_at = started
    while (now := time.monotonic()) - started < seconds:
        if now >= next_at:
            for name, proc in procs.items():
                series[name].append((now - started, rss_mb(proc.pid)))
            next_at += every
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} during the run")
        time.sleep(min(0.2, every))
    return series


def _figures(series: list[tuple[float, float]], seconds: float) -> dict[str, float]:
    values = [v for _, v in series if math.isfinite(v)]
    after = [(t, v) for t, v in series if t >= WARMUP_FRACTION * seconds and math.isfinite(v)]
    return {
        "rss_warm_mb": round(after[0][1], 1) if after else math.nan,
        "rss_end_mb": round(values[-1], 1) if values else math.nan,
        "rss_max_mb": round(max(values), 1) if values else math.nan,
        "rss_slope_mb_per_min": round(slope_per_min(after), 3),
    }


def _totals(series: dict[str, list[tuple[float, float]]], seconds: float) -> dict[str, float]:
    names = list(series)
    count = min(len(s) for s in series.values())
    total = [(series[names[0]][i][0], sum(series[n][i][1] for n in names)) for i in range(count)]
    return _figures(total, seconds)


def _layout(scenario: Path, seconds: float, every: float, workdir: Path) -> dict[str, Any]:
    config = _config(workdir, _free_port())
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        # The core first (it owns the socket and creates the store), then the API, then the
        # capture daemons, as the units' ordering does.
        for name, args in LAYOUT.items():
            extra = (
                ["--replay", str(scenario), "--speed", str(SPEED)] if args[0] == "capture" else []
            )
            procs[name] = _start(workdir, name, [*args, "--config", str(config), *extra])
            if name == "core":
                _wait_for((workdir / "core.sock").exists, procs[name], 60)
        series = _sample(procs, seconds, every)
    finally:
        codes = _stop(procs)
    result: dict[str, Any] = {"processes": {}}
    for name in procs:
        figures: dict[str, Any] = _figures(series[name], seconds)
        figures["heavy_imports"] = heavy_imports(
            (workdir / f"{name}.log").read_text(errors="replace")
        )
        figures["exit_code"] = codes.get(name)
        result["processes"][name] = figures
    totals = _totals(series, seconds)
    result.update({f"total_{k}": v for k, v in totals.items()})
    return result


def _all_in_one(scenario: Path, seconds: float, every: float, workdir: Path) -> dict[str, Any]:
    args = [
        "demo",
        "--port",
        str(_free_port()),
        "--scenario",
        str(scenario),
        "--speed",
        str(SPEED),
        "--data-dir",
        str(workdir / "demo"),
    ]
    procs = {"all_in_one": _start(workdir, "all_in_one", args)}
    try:
        series = _sample(procs, seconds, every)
    finally:
        codes = _stop(procs)
    figures: dict[str, Any] = _figures(series["all_in_one"], seconds)
    figures["heavy_imports"] = heavy_imports(
        (workdir / "all_in_one.log").read_text(errors="replace")
    )
    figures["exit_code"] = codes["all_in_one"]
    return figures


def _log(workdir: Path, name: str) -> str:
    return (workdir / f"{name}.log").read_text(errors="replace")


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the core did not open its socket")
        time.sleep(0.1)


def run(quick: bool, scenario: Path = SCENARIO) -> dict[str, Any]:
    """The layout for 20 s (quick) or 10 minutes, then the all-in-one process (half as long
    in the quick run, where it only has to show its size after start-up)."""
    seconds = 20.0 if quick else 600.0
    every = 1.0 if quick else 5.0
    workdir = Path(tempfile.mkdtemp(prefix="checkpoint-memory-", dir="/tmp"))
    try:
        layout = _layout(scenario, seconds, every, workdir)
        aio = _all_in_one(scenario, seconds / 2 if quick else seconds, every, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "seconds": seconds,
        "speed": SPEED,
        **layout,
        "all_in_one": aio,
        "all_in_one_rss_end_mb": aio["rss_end_mb"],
        "all_in_one_rss_slope_mb_per_min": aio["rss_slope_mb_per_min"],
    }
