"""Every MQTT topic the appliance uses, built in one place.

Layout: ``checkpoint/<site>/<gate>/...``. A gate is one zone with one core; its sensor nodes
publish under ``sensor/<node>/``; its core publishes under ``core/``; the command post publishes
acknowledgements under ``core/ack`` for the gate's core to apply. Names are config identifiers
(``scanner.config_check`` refuses ``/``, ``+`` and ``#`` in them), so no level can split or match
as a wildcard.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "checkpoint"


@dataclass(frozen=True, slots=True)
class GateTopics:
    """The topics of one gate of one site."""

    site: str
    gate: str

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.site}/{self.gate}"

    def observations(self, node: str) -> str:
        """A node's batches of observations (QoS 1, in order per node)."""
        return f"{self.base}/sensor/{node}/obs"

    def sensor_health(self, node: str, stream: str | None = None) -> str:
        """A node's health, retained so a core starting later sees the last state.

        A node whose capture daemons publish apart has one health per daemon (``stream``),
        each with its own will, so one daemon's goodbye never hides another's state.
        """
        base = f"{self.base}/sensor/{node}/health"
        return base if stream is None else f"{base}/{stream}"

    @property
    def all_observations(self) -> str:
        return f"{self.base}/sensor/+/obs"

    @property
    def all_sensor_health(self) -> str:
        return f"{self.base}/sensor/+/health/#"

    @property
    def alerts(self) -> str:
        """The gate core's alert events (raised, alarmed, acknowledged, resolved)."""
        return f"{self.base}/core/alerts"

    @property
    def core_health(self) -> str:
        """The gate core's health and sensor summary, retained."""
        return f"{self.base}/core/health"

    @property
    def acks(self) -> str:
        """Acknowledgements sent to this gate from the command post."""
        return f"{self.base}/core/ack"


def all_gates_alerts() -> str:
    """What a command post subscribes to for every gate's alerts."""
    return f"{ROOT}/+/+/core/alerts"


def all_gates_health() -> str:
    return f"{ROOT}/+/+/core/health"


def node_of(topic: str) -> str | None:
    """The node name in a ``.../sensor/<node>/...`` topic, or None for any other topic."""
    parts = topic.split("/")
    if len(parts) in (6, 7) and parts[0] == ROOT and parts[3] == "sensor":
        return parts[4]
    return None


def gate_of(topic: str) -> tuple[str, str] | None:
    """``(site, gate)`` of any topic under the root, or None."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] == ROOT:
        return parts[1], parts[2]
    return None
