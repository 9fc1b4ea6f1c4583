"""Two sensor nodes through Mosquitto to the gate core: 5,000 Wi-Fi + 1,000 BLE + 250 SDR
records a second in all, with no drop.

Four processes, as on a site: Mosquitto (started here on a free loopback port, persistence on),
two node processes (each a ``NodePublisher`` fed by a paced generator with half the load: 2,500
Wi-Fi probe requests, 500 BLE advertisements and 125 SDR bursts a second, handed over in 10 ms
slices as a capture loop does), and the core process (``CoreIngest`` into the core's
``EventQueue``, emptied by a thread that checks every node's records arrive once and in order).
The detection core itself is not in the loop: ``bench/load.py`` measures it under this load; this
bench measures the transport that feeds it.

Measured: records offered, delivered and dropped (node spool drops, the core's queue drops,
records missing or out of order at the core); the delivered rate against the offered one; the
broker's and the core's CPU (share of one core) and peak RSS, read from /proc; and, as the
baseline in the same run, the same records over the Unix-socket transport (one process sending,
the core's receiver reading), so the broker's cost is a ratio, not a machine-dependent number.

    python -m bench.mqtt_throughput --minutes 10 [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from scanner.mqtt.batch import ClockSync
from scanner.mqtt.demo import find_mosquitto, write_broker_conf
from scanner.mqtt.ingest import CoreIngest
from scanner.mqtt.link import BrokerSettings
from scanner.mqtt.node import NodeOptions, NodePublisher
from scanner.observations import BleAdvert, SdrBurst, SourceEvent, WifiFrame
from scanner.runtime.transport import EventQueue, SocketReceiver, SocketSender
from scanner.runtime.transport.codec import InputsChanged

# The offered load of the issue, split evenly between the two nodes.
WIFI_RATE, BLE_RATE, SDR_RATE = 5000.0, 1000.0, 250.0
NODES = ("inside", "gate")
SLICE_S = 0.01  # a capture loop hands over what it read every 10 ms
# The core's queue: the default [transport] queue_size.
QUEUE_SIZE = 20_000
# After the offered stream ends, the core has this long to receive the tail.
DRAIN_S = 30.0
SITE, GATE = "bench", "gate"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _record(node: str, kind: str, n: int, ts: float) -> SourceEvent:
    """A record whose number within its node's kind is in a field the core gets back."""
    if kind == "wifi":
        return WifiFrame(
            ts=ts,
            mono=ts,
            subtype="probe_req",
            mac=f"02:00:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
            random_mac=True,
            rssi_dbm=-60 - n % 30,
            freq_mhz=2437,
            ssid="",
            seq=n,
            fingerprint="a1b2c3d4",
            sensor=node,
        )
    if kind == "ble":
        return BleAdvert(
            ts=ts,
            mono=ts,
            address=f"4A:00:00:{n >> 16 & 255:02X}:{n >> 8 & 255:02X}:{n & 255:02X}",
            address_type="random",
            rssi_dbm=-70,
            tx_power=n,
            manufacturer_data={76: bytes.fromhex("1005031c0a1b2c")},
            sensor=node,
        )
    return SdrBurst(
        ts=ts,
        mono=ts,
        t_end=ts + 0.000577,
        freq_mhz=900.0 + (n % 1000) * 0.2,
        bandwidth_khz=200.0,
        power_dbfs=-40.0,
        snr_db=float(n),
        band="E-GSM-900 UL",
        sensor=node,
    )


def _number(event: SourceEvent) -> tuple[str, int]:
    if isinstance(event, WifiFrame):
        return "wifi", event.seq
    if isinstance(event, BleAdvert):
        return "ble", int(event.tx_power or 0)
    if isinstance(event, SdrBurst):
        return "sdr", int(event.snr_db)
    return "status", -1


def _offer(sink: Any, node: str, seconds: float, share: float) -> Counter[str]:
    """Offer the node's share of the load for ``seconds``, paced in slices; returns counts."""
    rates = {"wifi": WIFI_RATE * share, "ble": BLE_RATE * share, "sdr": SDR_RATE * share}
    offered: Counter[str] = Counter()
    start = time.monotonic()
    while True:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= seconds:
            break
        for kind, rate in rates.items():
            due = int(elapsed * rate)
            while offered[kind] < due:
                sink(_record(node, kind, offered[kind], time.time()))
                offered[kind] += 1
        time.sleep(max(0.0, SLICE_S - (time.monotonic() - now)))
    return offered


def _proc_stat(pid: int) -> tuple[float, int]:
    """CPU seconds used and RSS (bytes) of a process, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return cpu, rss


class _Watch:
    """Samples a process's CPU and RSS every second while the run lasts."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0, self.rss_peak = _proc_stat(pid)
        self.t0 = time.monotonic()
        self.cpu1, self.t1 = self.cpu0, self.t0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                cpu, rss = _proc_stat(self.pid)
            except OSError:
                return
            self.cpu1, self.t1 = cpu, time.monotonic()
            self.rss_peak = max(self.rss_peak, rss)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(timeout=2)
        span = max(1e-9, self.t1 - self.t0)
        return {
            "cpu_share": round((self.cpu1 - self.cpu0) / span, 3),
            "rss_peak_mb": round(self.rss_peak / 1e6, 1),
        }


# -- the processes -------------------------------------------------------------------------------


def _node_main(port: int, node: str, seconds: float, spool: str, out: Any) -> None:
    publisher = NodePublisher(
        BrokerSettings(host="127.0.0.1", port=port, site=SITE, gate=GATE),
        NodeOptions(node=node, stream="bench", spool_dir=Path(spool)),
        lambda: ClockSync(True, "bench", 0.0),
    )
    publisher.start()
    deadline = time.monotonic() + 10
    while not publisher.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    offered = _offer(publisher.sink, node, seconds, 1 / len(NODES))
    publisher.close(flush_s=DRAIN_S)
    health = publisher.spool.health()
    out.put(
        {
            "node": node,
            "offered": dict(offered),
            "acked": publisher.counters["records_acked"],
            "dropped": health["dropped_records"] + publisher.counters["dropped_pending_full"],
            "left_in_spool": health["pending_records"],
        }
    )


class _Checker:
    """Empties the core's queue, counting records per node and kind, and out-of-order ones."""

    def __init__(self, events: EventQueue) -> None:
        self.events = events
        self.next: dict[tuple[str, str], int] = {}
        self.got: Counter[str] = Counter()
        self.out_of_order = 0
        self.last_mono = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            event = self.events.get(timeout=0.1)
            if event is None or isinstance(event, InputsChanged):
                continue
            kind, n = _number(event)
            if n < 0:
                continue
            key = (event.sensor, kind)
            if n != self.next.get(key, 0):
                self.out_of_order += 1
            self.next[key] = n + 1
            self.got[event.sensor] += 1
            self.last_mono = time.monotonic()


def _core_mqtt_main(port: int, expected: int, seconds: float, out: Any) -> None:
    events = EventQueue(QUEUE_SIZE)
    ingest = CoreIngest(
        BrokerSettings(host="127.0.0.1", port=port, site=SITE, gate=GATE, client_id="bench-core"),
        events,
    )
    ingest.start()
    checker = _Checker(events)
    _wait_done(checker, expected, seconds)
    ingest.close()
    checker.stop.set()
    out.put(
        {
            "received": dict(checker.got),
            "out_of_order": checker.out_of_order,
            "queue_dropped": events.counters["dropped_queue_full"],
            "duplicate_batches": ingest.counters["duplicate_batches"],
        }
    )


def _wait_done(checker: _Checker, expected: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds + DRAIN_S + 15
    while time.monotonic() < deadline:
        if sum(checker.got.values()) >= expected:
            return
        time.sleep(0.2)


def _core_socket_main(path: str, expected: int, seconds: float, out: Any) -> None:
    events = EventQueue(QUEUE_SIZE)
    receiver = SocketReceiver(Path(path), events)
    receiver.start()
    checker = _Checker(events)
    out.put({"ready": True})
    _wait_done(checker, expected, seconds)
    receiver.close()
    checker.stop.set()
    out.put(
        {
            "received": dict(checker.got),
            "out_of_order": checker.out_of_order,
            "queue_dropped": events.counters["dropped_queue_full"],
        }
    )


def _socket_node_main(path: str, node: str, seconds: float, out: Any) -> None:
    sender = SocketSender(Path(path), buffer_size=200_000)
    sender.start()
    offered = _offer(sender.sink, node, seconds, 1 / len(NODES))
    sender.close(flush_s=DRAIN_S)
    out.put(
        {"node": node, "offered": dict(offered), "dropped": sender.counters["dropped_buffer_full"]}
    )


# -- the runs ------------------------------------------------------------------------------------


def _expected(seconds: float) -> int:
    per_node = sum(int(seconds * r / len(NODES)) for r in (WIFI_RATE, BLE_RATE, SDR_RATE))
    return per_node * len(NODES)


def run_mqtt(seconds: float, work: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    port = _free_port()
    user = None
    if os.geteuid() == 0:
        import getpass

        user = getpass.getuser()
    conf = write_broker_conf(work / "broker", port, user)
    broker = subprocess.Popen(
        [find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_port(port)
        out = ctx.Queue()
        expected = _expected(seconds)
        core = ctx.Process(target=_core_mqtt_main, args=(port, expected, seconds, out))
        core.start()
        time.sleep(1.0)  # subscribed before the nodes publish
        watches = {"broker": _Watch(broker.pid), "core": _Watch(core.pid or 0)}
        nodes = [
            ctx.Process(target=_node_main, args=(port, n, seconds, str(work / f"spool-{n}"), out))
            for n in NODES
        ]
        started = time.monotonic()
        for p in nodes:
            p.start()
        node_watches = [_Watch(p.pid or 0) for p in nodes]
        results = [out.get(timeout=seconds + DRAIN_S + 60) for _ in range(3)]
        elapsed = time.monotonic() - started
        for p in [*nodes, core]:
            p.join(timeout=30)
        usage: dict[str, Any] = {name: w.stop() for name, w in watches.items()}
        usage["nodes"] = {"cpu_share_each": [w.stop()["cpu_share"] for w in node_watches]}
    finally:
        broker.terminate()
        broker.wait(timeout=10)
    core_result = next(r for r in results if "received" in r)
    node_results = [r for r in results if "node" in r]
    return _summary(seconds, elapsed, node_results, core_result, usage)


def run_socket(seconds: float, work: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    path = str(work / "core.sock")
    out = ctx.Queue()
    expected = _expected(seconds)
    core = ctx.Process(target=_core_socket_main, args=(path, expected, seconds, out))
    core.start()
    out.get(timeout=30)
    watch = _Watch(core.pid or 0)
    nodes = [ctx.Process(target=_socket_node_main, args=(path, n, seconds, out)) for n in NODES]
    started = time.monotonic()
    for p in nodes:
        p.start()
    results = [out.get(timeout=seconds + DRAIN_S + 60) for _ in range(3)]
    elapsed = time.monotonic() - started
    for p in [*nodes, core]:
        p.join(timeout=30)
    usage = {"core": watch.stop()}
    core_result = next(r for r in results if "received" in r)
    node_results = [r for r in results if "node" in r]
    return _summary(seconds, elapsed, node_results, core_result, usage)


def _summary(
    seconds: float,
    elapsed: float,
    nodes: list[dict[str, Any]],
    core: dict[str, Any],
    usage: dict[str, Any],
) -> dict[str, Any]:
    offered = sum(sum(n["offered"].values()) for n in nodes)
    received = sum(core["received"].values())
    dropped = sum(n.get("dropped", 0) for n in nodes) + core["queue_dropped"]
    return {
        "seconds": seconds,
        "offered": offered,
        "offered_per_s": round(offered / seconds, 1),
        "received": received,
        "missing": offered - received,
        "dropped": dropped,
        "out_of_order": core["out_of_order"],
        "delivered_ratio": round(received / offered, 6) if offered else 0.0,
        "wall_s": round(elapsed, 1),
        "usage": usage,
        "nodes": nodes,
        "core": core,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {port}")


def run(minutes: float) -> dict[str, Any]:
    seconds = minutes * 60.0
    work = Path(tempfile.mkdtemp(prefix="checkpoint-bench-mqtt-"))
    try:
        mqtt = run_mqtt(seconds, work)
        # The baseline: a fifth as long (its CPU share does not depend on the length), at least
        # 20 s, so a 10-minute run does not take 20.
        socket_run = run_socket(max(20.0, seconds / 5), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    core_mqtt = mqtt["usage"]["core"]["cpu_share"]
    core_socket = socket_run["usage"]["core"]["cpu_share"]
    return {
        "mqtt": mqtt,
        "socket_baseline": socket_run,
        "core_cpu_ratio_mqtt_vs_socket": round(core_mqtt / core_socket, 2) if core_socket else None,
        "zero_drops": mqtt["dropped"] == 0 and mqtt["missing"] == 0 and mqtt["out_of_order"] == 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.minutes)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
    else:
        m, s = result["mqtt"], result["socket_baseline"]
        lines = [
            f"MQTT, two nodes, {m['seconds']:.0f} s: offered {m['offered']} "
            f"({m['offered_per_s']}/s), received {m['received']}, dropped {m['dropped']}, "
            f"missing {m['missing']}, out of order {m['out_of_order']}",
            f"  broker: CPU {m['usage']['broker']['cpu_share']:.1%} of a core, "
            f"RSS peak {m['usage']['broker']['rss_peak_mb']} MB",
            f"  core:   CPU {m['usage']['core']['cpu_share']:.1%} of a core, "
            f"RSS peak {m['usage']['core']['rss_peak_mb']} MB",
            f"  nodes:  CPU {m['usage']['nodes']['cpu_share_each']} of a core each",
            f"Unix socket baseline, {s['seconds']:.0f} s: core CPU "
            f"{s['usage']['core']['cpu_share']:.1%}, received {s['received']} of {s['offered']}",
            f"core CPU, MQTT vs socket: x{result['core_cpu_ratio_mqtt_vs_socket']}",
            f"zero drops: {result['zero_drops']}",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
    return 0 if result["zero_drops"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
