"""``checkpoint demo --sensors 2``: two sensor nodes publishing through a Mosquitto of its own.

The demo starts Mosquitto (Debian's ``mosquitto``) on a free loopback port from a temporary
directory, a node publisher per sensor, and the core's MQTT ingest; the core and the tablet page
are the demo's as ever. A several-sensor scenario (``sensors/NAME/``, as ``checkpoint simulate
--sensors inside,gate`` writes) gives each sensor's recordings to a node of that name; a
one-sensor scenario (the bundled one) is split between two nodes (``inside`` has its Wi-Fi and
BLE recordings, ``gate`` its SDR recording). Everything is the production
code path a site with two Pis runs, minus TLS: the broker listens on loopback only.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scanner.clock import Clock
from scanner.config import ConfigError
from scanner.mqtt.batch import ClockSync
from scanner.mqtt.ingest import CoreIngest
from scanner.mqtt.link import BrokerSettings
from scanner.mqtt.node import NodeOptions, NodePublisher
from scanner.mqtt.runtime import IngestComponent, NodeComponent
from scanner.runtime.build import SourceHealthReporter
from scanner.runtime.components.replay import add_replay
from scanner.runtime.supervisor import Supervisor
from scanner.runtime.transport import EventQueue

_LOGGER = logging.getLogger(__name__)

# Which of the scenario's recordings each demo node replays.
DEMO_NODES: dict[str, tuple[str, ...]] = {
    "inside": ("wifi.pcap", "wifi.pcapng", "ble.jsonl"),
    "gate": ("sdr",),
}
SITE, GATE = "demo", "gate"
# Mosquitto opens its port within milliseconds; a slow, loaded machine gets ten seconds.
BROKER_START_S = 10.0


def find_mosquitto() -> str:
    path = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if path is None:
        raise ConfigError(
            "--sensors 2 needs the Mosquitto broker: apt-get install mosquitto (Debian)"
        )
    return path


class BrokerProcess:
    """Mosquitto as a supervised component, from a config file in the demo's directory."""

    def __init__(self, name: str, exe: str, conf: Path, port: int) -> None:
        self.name = name
        self._exe = exe
        self._conf = conf
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self._conf.parent / "mosquitto.log").open("ab")
        try:
            self._process = subprocess.Popen(
                [self._exe, "-c", str(self._conf)], stdout=log, stderr=log
            )
        finally:
            log.close()
        deadline = time.monotonic() + BROKER_START_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise OSError(f"mosquitto exited with status {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise OSError(f"mosquitto did not listen on 127.0.0.1:{self.port}")

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def death_reason(self) -> str:
        code = self._process.returncode if self._process is not None else None
        return f"mosquitto exited (status {code})"

    def stop(self, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def poll(self, now_mono: float) -> None:
        """Nothing periodic."""

    def progress_mono(self) -> float | None:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_broker_conf(directory: Path, port: int, user: str | None) -> Path:
    """A loopback-only broker keeping sessions (the nodes' buffers outlive a broker restart)."""
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    lines = [
        # Loopback only, so no TLS and no accounts: nothing off this machine can connect.
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {data}/",
        "max_queued_messages 0",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
    ]
    if user is not None:
        # Started as root, Mosquitto drops to this user, who owns the demo's directory.
        lines.insert(0, f"user {user}")
    conf = directory / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return conf


def node_view(scenario: Path, names: tuple[str, ...], into: Path) -> Path | None:
    """A scenario directory holding only ``names`` (symlinks) and truth.json; None if empty."""
    present = [scenario / n for n in names if (scenario / n).exists()]
    if not present:
        return None
    into.mkdir(parents=True, exist_ok=True)
    for path in [*present, scenario / "truth.json"]:
        if path.exists():
            (into / path.name).symlink_to(path.resolve())
    return into


def add_demo_nodes(
    supervisor: Supervisor,
    reporter: SourceHealthReporter,
    scenario: Path,
    events: EventQueue,
    clock: Clock,
    speed: float,
    cleanup: list[Callable[[], None]],
) -> dict[str, Any]:
    """Add the broker, the core's subscription and two replaying nodes; returns banner details."""
    import getpass
    import os

    exe = find_mosquitto()
    work = Path(tempfile.mkdtemp(prefix="checkpoint-demo-mqtt-"))
    cleanup.append(lambda: shutil.rmtree(work, ignore_errors=True))
    port = _free_port()
    user = getpass.getuser() if os.geteuid() == 0 else None
    conf = write_broker_conf(work / "broker", port, user)
    supervisor.add("broker", lambda: BrokerProcess("broker", exe, conf, port))

    def settings(client_id: str) -> BrokerSettings:
        return BrokerSettings(
            host="127.0.0.1", port=port, site=SITE, gate=GATE, client_id=client_id
        )

    core_settings = settings("demo-core")
    supervisor.add(
        "mqtt",
        lambda: IngestComponent("mqtt", CoreIngest(core_settings, events, clock)),
        critical=False,
    )
    nodes: list[str] = []
    for node, source, names in _node_recordings(scenario):
        view = node_view(source, names, work / "views" / node)
        if view is None:
            continue
        publisher = NodePublisher(
            settings(f"demo-{node}"),
            NodeOptions(node=node, stream="node", spool_dir=work / "spool" / node),
            # One machine: both nodes share its clock, synchronised or not, with no offset.
            lambda: ClockSync(True, "demo", 0.0),
            clock,
        )
        supervisor.add(f"node-{node}", _node_factory(f"node-{node}", publisher))
        add_replay(
            supervisor,
            reporter,
            view,
            publisher.sink,
            clock,
            speed,
            publisher.transport_counters,
            name=f"replay-{node}",
        )
        nodes.append(node)
    if not nodes:
        raise ConfigError(f"scenario {scenario} has no recording for the demo's nodes")
    return {"broker": f"mqtt://127.0.0.1:{port}", "nodes": nodes}


def _node_recordings(scenario: Path) -> list[tuple[str, Path, tuple[str, ...]]]:
    """Each demo node, the directory its recordings are in, and which recordings it replays."""
    sensors = scenario / "sensors"
    every = ("wifi.pcap", "wifi.pcapng", "ble.jsonl", "sdr")
    if sensors.is_dir():
        return [(p.name, p, every) for p in sorted(sensors.iterdir()) if p.is_dir()]
    return [(node, scenario, names) for node, names in DEMO_NODES.items()]


def _node_factory(name: str, publisher: NodePublisher) -> Callable[[], NodeComponent]:
    def factory() -> NodeComponent:
        return NodeComponent(name, publisher)

    return factory
