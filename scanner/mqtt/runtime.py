"""The MQTT ends as runtime components, built from the ``[mqtt]`` section.

* A capture daemon (``checkpoint capture RADIO``) or ``checkpoint node`` on a Pi whose
  ``[mqtt]`` names its ``node`` publishes through a ``NodePublisher`` instead of the core's Unix
  socket.
* ``checkpoint core`` and ``checkpoint run`` with an ``[mqtt]`` section subscribe to their gate's
  nodes besides listening on the socket (or the in-process queue): one core, both transports.
"""

from __future__ import annotations

import logging
from typing import Any

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.config import Config, ConfigError
from scanner.mqtt.batch import read_clock_sync
from scanner.mqtt.ingest import CoreIngest
from scanner.mqtt.link import BrokerSettings
from scanner.mqtt.node import DEFAULT_BATCH_RECORDS, DEFAULT_LINGER_S, NodeOptions, NodePublisher
from scanner.runtime.supervisor import Supervisor
from scanner.runtime.transport import EventQueue

_LOGGER = logging.getLogger(__name__)

# Default spool budget, in MB (the node module's default, in the config's unit).
DEFAULT_SPOOL_MB = 64.0


def mqtt_configured(config: Config) -> bool:
    """An ``[mqtt]`` section with at least one key (the example's commented one has none)."""
    return bool(config.section("mqtt"))


def node_name(config: Config) -> str | None:
    """The sensor node this Pi is, when its capture publishes to a broker."""
    value = config.section("mqtt").get("node")
    return str(value) if value else None


def broker_settings(config: Config, default_client_id: str = "") -> BrokerSettings:
    """The ``[mqtt]`` section as broker settings (a config error names what is wrong)."""
    return BrokerSettings.from_mapping(config.section("mqtt"), default_client_id=default_client_id)


def node_publisher(config: Config, stream: str, clock: Clock = SYSTEM_CLOCK) -> NodePublisher:
    """This node's publisher for one stream (a radio's daemon, or ``node`` for all of them)."""
    node = node_name(config)
    if node is None:
        raise ConfigError(f"{config.path}: [mqtt] node (this sensor node's name) is not set")
    section = config.section("mqtt")
    settings = broker_settings(config)
    spool_dir = config.state_dir / "mqtt-spool" / f"{node}-{stream}"
    options = NodeOptions(
        node=node,
        stream=stream,
        spool_dir=spool_dir,
        spool_bytes=int(float(section.get("spool_mb", DEFAULT_SPOOL_MB)) * 1024 * 1024),
        batch_records=int(section.get("batch_records", DEFAULT_BATCH_RECORDS)),
        linger_s=float(section.get("batch_linger_s", DEFAULT_LINGER_S)),
    )
    configured = configured_offset(config, node)
    try:
        return NodePublisher(settings, options, lambda: read_clock_sync(configured), clock)
    except OSError as exc:
        raise ConfigError(f"[mqtt]: cannot use the spool {spool_dir}: {exc}") from exc


def configured_offset(config: Config, node: str) -> float | None:
    """The node's ``clock_offset_s`` from ``[[sensors]]``, when the installer set one."""
    for sensor in config.sensors:
        if sensor.name == node and sensor.clock_offset_s:
            return sensor.clock_offset_s
    return None


class NodeComponent:
    """A node publisher as a supervised component; the publisher (and its spool) outlives it."""

    def __init__(self, name: str, publisher: NodePublisher) -> None:
        self.name = name
        self.publisher = publisher

    def start(self) -> None:
        self.publisher.start()

    def alive(self) -> bool:
        return self.publisher.alive()

    def death_reason(self) -> str:
        return "MQTT publisher thread ended"

    def stop(self, timeout: float) -> None:
        self.publisher.close(flush_s=min(timeout, 2.0))

    def poll(self, now_mono: float) -> None:
        """paho reconnects and the publisher replays by themselves."""

    def progress_mono(self) -> float | None:
        return None


class IngestComponent:
    """The core's subscription as a supervised component."""

    def __init__(self, name: str, ingest: CoreIngest) -> None:
        self.name = name
        self.ingest = ingest

    def start(self) -> None:
        self.ingest.start()

    def alive(self) -> bool:
        client = self.ingest._client
        thread = getattr(client, "_thread", None) if client is not None else None
        return thread is not None and bool(thread.is_alive())

    def death_reason(self) -> str:
        return "MQTT network thread ended"

    def stop(self, timeout: float) -> None:
        self.ingest.close()

    def poll(self, now_mono: float) -> None:
        """paho reconnects by itself."""

    def progress_mono(self) -> float | None:
        return None


def add_ingest(
    supervisor: Supervisor, config: Config, events: EventQueue, clock: Clock = SYSTEM_CLOCK
) -> list[CoreIngest]:
    """Subscribe the core to its gate's sensor nodes when ``[mqtt]`` is configured (and this Pi
    is not itself a sensor node).

    Returns the (at most one) live ingest, refilled on each restart, for the runtime health.
    """
    if not mqtt_configured(config) or node_name(config) is not None:
        # A sensor node's config names the node: its broker account may publish, not read.
        return []
    settings = broker_settings(config)
    holder: list[CoreIngest] = []

    def factory() -> IngestComponent:
        ingest = CoreIngest(settings, events, clock)
        holder[:] = [ingest]
        return IngestComponent("mqtt", ingest)

    # Not critical: a broker that is down must not take the core (and the socket's radios) down.
    supervisor.add("mqtt", factory, critical=False)
    return holder


def ingest_health(holder: list[CoreIngest]) -> dict[str, Any]:
    return holder[0].health() if holder else {"connected": False}
