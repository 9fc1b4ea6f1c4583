"""Gate cores fed a short simulated scenario, and a plain MQTT listener at the far end."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from scanner.clock import SYSTEM_CLOCK
from scanner.core.options import CoreOptions
from scanner.mqtt.link import BrokerSettings
from scanner.observations import SourceEvent
from scanner.runtime.build import CoreWithStore, gate_core_client_id
from scanner.sources.replay import iter_scenario, shifted


def gate_settings(port: int, site: str, gate: str, **extra: Any) -> BrokerSettings:
    return BrokerSettings(
        host="127.0.0.1",
        port=port,
        site=site,
        gate=gate,
        client_id=gate_core_client_id(site, gate),
        keepalive_s=extra.pop("keepalive_s", 5),
        **extra,
    )


def records(scenario: Path) -> list[SourceEvent]:
    """The scenario's records, moved to end now (the page shows them as today's)."""
    recs = list(iter_scenario(scenario))
    if not recs:
        return recs
    dts = time.time() - recs[-1].ts
    return [shifted(r, dts, dts) for r in recs]


class Gate:
    """A gate's core over its own store, publishing to the broker as the appliance's does."""

    def __init__(
        self,
        directory: Path,
        settings: BrokerSettings,
        notify: Callable[[str], None] | None = None,
        **sink_options: Any,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.db = directory / "gate.db"
        self.core = CoreWithStore(
            str(self.db),
            CoreOptions(),
            SYSTEM_CLOCK,
            mqtt=settings,
            mqtt_options=sink_options,
            notify=notify,
        )
        sink = self.core.mqtt
        if sink is None:
            raise RuntimeError("the gate core was built without its MQTT sink")
        self.sink = sink
        self.last_mono = 0.0

    def feed(self, recs: list[SourceEvent]) -> None:
        for rec in recs:
            self.core.handle(rec)
            self.last_mono = rec.mono

    def run_out(self, tail_s: float = 60.0) -> None:
        self.core.runner.run_out(self.last_mono, tail_s)

    def close(self) -> None:
        self.core.close()


class Listener:
    """A subscriber with a persistent session, keeping every message by topic, in order."""

    def __init__(self, port: int, topics: list[str], client_id: str = "test-listener") -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.topics = topics

        def on_connect(client: paho.Client, *_args: Any) -> None:
            for topic in self.topics:
                client.subscribe(topic, qos=1)

        def on_message(_client: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
            with self.lock:
                self.messages.append((msg.topic, json.loads(msg.payload)))

        def on_subscribe(*_args: Any) -> None:
            self.subscribed.set()

        self.subscribed = threading.Event()
        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.on_subscribe = on_subscribe
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        if not self.subscribed.wait(5.0):
            raise RuntimeError("the listener's subscription was not acknowledged")

    def of(self, suffix: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for t, m in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
