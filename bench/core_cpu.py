"""The core process's CPU per record: socket decode, evidence rings, detection and store sink.

A mixed stream at the latency bench's load (5,000 Wi-Fi probe requests, 1,000 BLE adverts and
250 SDR bursts a second, from ``bench.load``'s crowd with a visitor who raises an alert) is
generated and encoded first, then batched into socket messages as a capture daemon's sender
batches them (``SEND_LINGER_S`` of each radio's records a message). Measured, in one thread:
each message sent on a SEQPACKET socket pair (the send left out of the figure: it is the
capture daemon's) and read by the real ``SocketReceiver`` (its receive, its decode and its put
into the core's ``EventQueue``), then the queue drained into the appliance's
core as built for ``checkpoint core`` (``CoreWithStore``: evidence keeper, core, store sink on
a real store), with the core's tick on its beat of the stream's time. The figure is the
thread's CPU time divided by the records, the decode's share apart.

Runs are made in child processes, one source tree each (``--tree``: an older commit's checkout,
for a baseline), alternating, so old and new code see the same machine load; the machine's load
average is reported beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
WIFI_RATE, BLE_RATE, SDR_RATE = 5000.0, 1000.0, 250.0
# As the sender's linger (scanner.runtime.transport.SEND_LINGER_S): a message holds this much
# of one radio's stream.
LINGER_S = 0.005
TICK_EVERY_S = 0.5  # the core loop's beat (scanner.runtime.components.core_loop)
WALL0 = 1_764_000_000.0
MONO0 = 1000.0


def _stream(seconds: float) -> list[tuple[float, list[Any]]]:
    """Each radio's records in sender-sized groups: (the group's last mono, records)."""
    from bench.load import ble_maker, sdr_maker, wifi_maker

    groups: list[tuple[float, list[Any]]] = []
    for make, rate in (
        (wifi_maker(MONO0), WIFI_RATE),
        (ble_maker(MONO0), BLE_RATE),
        (sdr_maker(MONO0), SDR_RATE),
    ):
        n = int(seconds * rate)
        current: list[Any] = []
        window_end = MONO0 + LINGER_S
        for i in range(n):
            dt = i / rate
            if MONO0 + dt >= window_end and current:
                groups.append((window_end, current))
                current = []
                window_end += LINGER_S * (1 + int((MONO0 + dt - window_end) / LINGER_S))
            record = make(i, WALL0 + dt, MONO0 + dt)
            if record is not None:
                current.append(record)
        if current:
            groups.append((window_end, current))
    groups.sort(key=lambda g: g[0])
    return groups


def one(seconds: float) -> dict[str, Any]:
    """One measured run of the tree first on ``sys.path``."""
    from scanner.clock import ManualClock
    from scanner.core.options import CoreOptions
    from scanner.runtime.build import CoreWithStore
    from scanner.runtime.transport import MAX_PACKET_BYTES, EventQueue, SocketReceiver
    from scanner.runtime.transport.codec import encode_message

    groups = _stream(seconds)
    messages: list[tuple[float, bytes]] = []
    records = 0
    for mono, group in groups:
        lines = [encode_message(r) for r in group]
        records += len(lines)
        batch: list[bytes] = []
        size = 0
        for line in lines:
            if size + len(line) + 1 > MAX_PACKET_BYTES:
                messages.append((mono, b"\n".join(batch)))
                batch, size = [], 0
            batch.append(line)
            size += len(line) + 1
        messages.append((mono, b"\n".join(batch)))

    with tempfile.TemporaryDirectory(prefix="checkpoint-corecpu-") as tmp:
        clock = ManualClock(WALL0)
        core = CoreWithStore(str(Path(tmp) / "store.db"), CoreOptions(), clock)
        events = EventQueue(10**7)
        receiver = SocketReceiver(Path(tmp) / "core.sock", events)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        theirs.setblocking(False)
        next_tick = MONO0
        decode_s = 0.0
        send_s = 0.0
        handled = 0
        t0 = time.thread_time()
        for mono, packet in messages:
            # The send is the capture daemon's CPU, not the core's: left out.
            s0 = time.thread_time()
            ours.send(packet)
            d0 = time.thread_time()
            send_s += d0 - s0
            receiver._read(theirs)
            decode_s += time.thread_time() - d0
            # As the core loop takes them (at once where the queue can).
            take = getattr(events, "get_many", None)
            if take is not None:
                taken = take(256)
                while taken:
                    for item in taken:
                        core.handle(item)
                    handled += len(taken)
                    taken = take(256)
            else:
                waiting = events.get_nowait()
                while waiting is not None:
                    core.handle(waiting)
                    handled += 1
                    waiting = events.get_nowait()
            if mono >= next_tick:
                core.tick(mono)
                next_tick = mono + TICK_EVERY_S
        cpu_s = time.thread_time() - t0 - send_s
        alerts = core.store.query("SELECT count(*) FROM alerts")[0][0]
        core.close()
        ours.close()
        theirs.close()
    return {
        "records": records,
        "handled": handled,
        "messages": len(messages),
        "alerts": int(alerts),
        "us_per_record": 1e6 * cpu_s / records,
        "decode_us_per_record": 1e6 * decode_s / records,
        "rest_us_per_record": 1e6 * (cpu_s - decode_s) / records,
    }


def compare(trees: dict[str, Path], rounds: int, seconds: float) -> dict[str, Any]:
    """Alternating child runs, one per tree a round; the median of each tree's figures."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    loads: list[float] = []
    for _ in range(rounds):
        for name, tree in trees.items():
            loads.append(os.getloadavg()[0])
            out = subprocess.run(
                [sys.executable, __file__, "--one", "--tree", str(tree), "--seconds", f"{seconds}"],
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            ).stdout
            runs[name].append(json.loads(out.splitlines()[-1]))
    result: dict[str, Any] = {"load_avg_1m": [round(x, 2) for x in loads]}
    for name, rs in runs.items():
        result[name] = {
            key: round(statistics.median(r[key] for r in rs), 2)
            for key in ("us_per_record", "decode_us_per_record", "rest_us_per_record")
        }
        result[name]["each_us_per_record"] = [round(r["us_per_record"], 2) for r in rs]
        result[name]["records"] = rs[0]["records"]
        result[name]["alerts"] = sorted({r["alerts"] for r in rs})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, action="append", help="a source tree (repeat)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="of stream per run")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        sys.path.insert(0, str(args.tree[0].resolve()))
        sys.stdout.write(json.dumps(one(args.seconds)) + "\n")
        return
    trees = {str(t): t.resolve() for t in (args.tree or [])}
    trees.setdefault("this", HERE)
    sys.stdout.write(json.dumps(compare(trees, args.rounds, args.seconds), indent=1) + "\n")


if __name__ == "__main__":
    main()
