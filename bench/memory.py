"""Appliance memory: the systemd layout's five processes on a replayed load, RSS of each and total.

As ``systemd/`` runs the appliance: ``checkpoint capture wifi``, ``capture ble`` and ``capture
sdr`` (each replaying its radio's recording from a scenario directory, looping), ``checkpoint
core`` and ``checkpoint api``, each its own process, joined by the core's Unix socket and the
store. Every process's resident set size is read from /proc once a second (every 5 s in the
soak); after a warm-up (the first fifth of the run: imports, caches, trackers filling) the slope
says whether it is flat. Then the all-in-one process alone: ``checkpoint demo``, the same
components in one process on the same recordings (``checkpoint run`` is that too, but with live
radios, which a machine without them cannot start).

Two loads. The quiet one is the bundled scenario at eight times its pace. The churning one
(the default) is a crowd whose addresses keep changing, as ``bench/load.py`` offers it: a
Wi-Fi recording of 5,000 probe requests a second from 250 new randomised MACs a second and a
BLE recording of 1,000 adverts a second from 100 new addresses a second, written for this run
and long enough that no address comes back, with a new visitor's phone walking into the zone
every two minutes; the SDR daemon replays the bundled uplink bursts at eight times their pace.
This is what per-transmitter state has to survive: every address is new, and the processes
must stay flat anyway.

A replay maps its pcap (and SigMF data) into memory, and the pages it has read count in its
RSS until the kernel wants them back; a live capture maps no file. The figures leave those
mappings out (``recording_mb``, reported apart), so the churning run's 400 MB recording does
not pass for the Wi-Fi daemon's own memory.

Each process runs with ``-X importtime``; the heavy packages it imported (numpy, scipy, scapy,
fastapi, ...) are listed per process, so what a process loads without needing shows here.
"""

from __future__ import annotations

import argparse
import json
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
# The churning crowd, at bench/load.py's rates: a phone in a crowd sends a probe burst from each
# randomised MAC, twenty frames here, so 5,000 frames a second are 250 new MACs a second; BLE
# adverts come ten per address before it rotates (100 new addresses a second).
CHURN_WIFI_RATE = 5000.0
CHURN_FRAMES_PER_MAC = 20
CHURN_BLE_RATE = 1000.0
CHURN_ADVERTS_PER_ADDRESS = 10
# A visitor's phone walks into the zone every two minutes and stays ten seconds (long enough to
# raise an alert, and the alert resolves before the next), each with a new MAC and BLE address.
VISIT_PERIOD_S = 120.0
VISIT_FROM_S, VISIT_UNTIL_S = 5.0, 15.0
# The recordings outlast the run by this much, so the replay never loops back to known MACs.
CHURN_MARGIN_S = 60.0
# Mapped files that are recordings a replay reads, not memory a live capture would use.
RECORDING_SUFFIXES = (".pcap", ".pcapng", ".sigmf-data")
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
    "pyfftw",
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


def recording_mb(pid: int) -> float:
    """Resident pages of recordings ``pid`` has mapped (pcap, SigMF data), in MB; 0 once gone."""
    total_kb = 0
    counting = False
    try:
        with Path(f"/proc/{pid}/smaps").open() as smaps:
            for line in smaps:
                first = line.split(maxsplit=1)[0]
                if not first.endswith(":"):
                    # A mapping's header: address range, perms, offset, dev, inode, path.
                    counting = line.rstrip().endswith(RECORDING_SUFFIXES)
                elif counting and first == "Rss:":
                    total_kb += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return total_kb / 1024.0


def appliance_mb(pid: int) -> float:
    """RSS of ``pid`` without the recordings it replays (what it would hold capturing live)."""
    return rss_mb(pid) - recording_mb(pid)


def write_churn_scenario(directory: Path, seconds: float, sdr_from: Path = SCENARIO) -> Path:
    """A scenario of a churning crowd lasting ``seconds``: ``wifi.pcap``, ``ble.jsonl``, the
    uplink bursts of ``sdr_from`` (linked, not copied) and a truth.json giving its length."""
    from scanner import safe_json
    from scanner.sources.wifi.build import probe_request, probe_request_body, radiotap
    from scanner.sources.wifi.recorder import PcapWriter

    directory.mkdir(parents=True, exist_ok=True)
    start = float(safe_json.load_path(sdr_from / "truth.json")["start"])
    bodies = [
        probe_request_body("", vendor=[bytes([0x00, 0x50, 0xF2, 8, n, 0])]) for n in range(40)
    ]
    visitor_body = probe_request_body("", vendor=[b"\x00\x17\xf2\x0a\x00\x01"])
    # Far outside the zone (-90 to -66 dBm) for the crowd; the visitor is at the gate.
    headers = {rssi: radiotap(rssi_dbm=rssi, freq_mhz=2437) for rssi in range(-95, -30)}

    def visit(t: float) -> int | None:
        number, phase = divmod(t, VISIT_PERIOD_S)
        return int(number) if VISIT_FROM_S <= phase < VISIT_UNTIL_S else None

    with PcapWriter(directory / "wifi.pcap") as pcap:
        for i in range(int(seconds * CHURN_WIFI_RATE)):
            t = i / CHURN_WIFI_RATE
            number = visit(t)
            if number is not None and i % 25 == 0:
                mac = f"02:aa:bb:{(number >> 8) & 0xFF:02x}:{number & 0xFF:02x}:01"
                frame = headers[-42] + probe_request(mac, i, visitor_body)
            else:
                k = i // CHURN_FRAMES_PER_MAC
                mac = f"da:{(k >> 16) & 0xFF:02x}:{(k >> 8) & 0xFF:02x}:{k & 0xFF:02x}:00:01"
                frame = headers[-90 + (k % 25)] + probe_request(mac, i, bodies[k % 40])
            pcap.write(start + t, frame)
    handset = {"76": "1005031c5a0b2e"}  # Apple Nearby Info: a phone
    payloads = [handset, {"76": "0719010f2022f58f0100"}, {"6": "0109200233445566778899"}]
    with (directory / "ble.jsonl").open("w", encoding="utf-8") as ble:
        for i in range(int(seconds * CHURN_BLE_RATE)):
            t = i / CHURN_BLE_RATE
            number = visit(t)
            if number is not None and i % 10 == 0:
                address, rssi, mfr = f"5A:11:22:33:{number & 0xFF:02X}:55", -45, handset
            else:
                k = i // CHURN_ADVERTS_PER_ADDRESS
                address = f"4{k % 4:X}:{(k >> 16) & 0xFF:02X}:{(k >> 8) & 0xFF:02X}:"
                address += f"{k & 0xFF:02X}:00:01"
                rssi, mfr = -92 + (k % 18), payloads[k % len(payloads)]
            line = {
                "ts": round(start + t, 6),
                "address": address,
                "address_type": "random",
                "rssi": rssi,
                "manufacturer_data": mfr,
            }
            ble.write(json.dumps(line, separators=(",", ":")) + "\n")
    (directory / "sdr").symlink_to((sdr_from / "sdr").resolve())
    truth = {"start": start, "duration_s": seconds, "devices": [], "profile": "churn"}
    (directory / "truth.json").write_text(json.dumps(truth))
    return directory


def heavy_imports(log: str) -> list[str]:
    """The heavy packages ``-X importtime`` says ``log``'s process imported (top-level names).

    A package counts when its own line is there: a submodule's line alone is an import that
    failed before its package loaded (the SDR daemon hides ``scipy.fftpack`` from pyfftw, and
    the attempt still prints a line), since a submodule that loads loads its package first.
    """
    found: set[str] = set()
    for line in log.splitlines():
        if not line.startswith("import time:"):
            continue
        name = line.rsplit("|", 1)[-1].strip()
        if name in HEAVY:
            found.add(name)
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
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, float]]:
    """Each process's RSS without its recordings over the run, and the most its recordings'
    pages took (MB)."""
    series: dict[str, list[tuple[float, float]]] = {name: [] for name in procs}
    mapped: dict[str, float] = dict.fromkeys(procs, 0.0)
    started = time.monotonic()
    next_at = started
    while (now := time.monotonic()) - started < seconds:
        if now >= next_at:
            for name, proc in procs.items():
                recording = recording_mb(proc.pid)
                mapped[name] = max(mapped[name], recording)
                series[name].append((now - started, rss_mb(proc.pid) - recording))
            next_at += every
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} during the run")
        time.sleep(min(0.2, every))
    return series, mapped


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


def _layout(
    loads: dict[str, tuple[Path, float]], seconds: float, every: float, workdir: Path
) -> dict[str, Any]:
    """The five daemons; ``loads``: each radio's scenario and replay speed."""
    config = _config(workdir, _free_port())
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        # The core first (it owns the socket and creates the store), then the API, then the
        # capture daemons, as the units' ordering does.
        for name, args in LAYOUT.items():
            extra: list[str] = []
            if args[0] == "capture":
                scenario, speed = loads[args[1]]
                extra = ["--replay", str(scenario), "--speed", str(speed)]
            procs[name] = _start(workdir, name, [*args, "--config", str(config), *extra])
            if name == "core":
                _wait_for((workdir / "core.sock").exists, procs[name], 60)
        series, mapped = _sample(procs, seconds, every)
    finally:
        codes = _stop(procs)
    result: dict[str, Any] = {"processes": {}}
    for name in procs:
        figures: dict[str, Any] = _figures(series[name], seconds)
        figures["recording_mb"] = round(mapped[name], 1)
        figures["heavy_imports"] = heavy_imports(_log(workdir, name))
        figures["exit_code"] = codes.get(name)
        result["processes"][name] = figures
    totals = _totals(series, seconds)
    result.update({f"total_{k}": v for k, v in totals.items()})
    return result


def _all_in_one(
    scenario: Path, speed: float, seconds: float, every: float, workdir: Path
) -> dict[str, Any]:
    args = [
        "demo",
        "--port",
        str(_free_port()),
        "--scenario",
        str(scenario),
        "--speed",
        str(speed),
        "--data-dir",
        str(workdir / "demo"),
    ]
    procs = {"all_in_one": _start(workdir, "all_in_one", args)}
    try:
        series, mapped = _sample(procs, seconds, every)
    finally:
        codes = _stop(procs)
    figures: dict[str, Any] = _figures(series["all_in_one"], seconds)
    figures["recording_mb"] = round(mapped["all_in_one"], 1)
    figures["heavy_imports"] = heavy_imports(_log(workdir, "all_in_one"))
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


def run(
    quick: bool,
    scenario: Path = SCENARIO,
    *,
    churn: bool = True,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The layout for 20 s (quick) or 10 minutes (or ``seconds``), then the all-in-one process
    (half as long in the quick run, where it only has to show its size after start-up).

    ``churn``: the churning crowd (see the module docstring); otherwise ``scenario`` at
    eight times its pace for every radio.
    """
    length = seconds if seconds is not None else 20.0 if quick else 600.0
    every = 1.0 if length <= 60 else 5.0
    aio_seconds = length / 2 if quick else length
    workdir = Path(tempfile.mkdtemp(prefix="checkpoint-memory-", dir="/tmp"))
    try:
        if churn:
            crowd = write_churn_scenario(workdir / "churn", length + CHURN_MARGIN_S, scenario)
            loads = {"wifi": (crowd, 1.0), "ble": (crowd, 1.0), "sdr": (scenario, SPEED)}
            aio_scenario, aio_speed = crowd, 1.0
        else:
            loads = dict.fromkeys(("wifi", "ble", "sdr"), (scenario, SPEED))
            aio_scenario, aio_speed = scenario, SPEED
        layout = _layout(loads, length, every, workdir)
        aio = _all_in_one(aio_scenario, aio_speed, aio_seconds, every, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "seconds": length,
        "load": "churn" if churn else "quiet",
        "speed": 1.0 if churn else SPEED,
        **layout,
        # Each daemon's size at the end, for the bench's table.
        **{f"{name}_rss_end_mb": f["rss_end_mb"] for name, f in layout["processes"].items()},
        "all_in_one": aio,
        "all_in_one_rss_end_mb": aio["rss_end_mb"],
        "all_in_one_rss_slope_mb_per_min": aio["rss_slope_mb_per_min"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each run")
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="the bundled scenario at 8x instead of the churning crowd",
    )
    args = parser.parse_args(argv)
    result = run(quick=False, churn=not args.quiet, seconds=args.minutes * 60.0)
    sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
