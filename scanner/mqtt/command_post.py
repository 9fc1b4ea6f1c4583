"""The command post's link to the site's gates: every gate's alerts and health into its store,
and its acknowledgements out to the gate they are for.

One paho client with a persistent session: while the command post is down the broker keeps
every gate's alert messages for it (QoS 1), and each gate's health is retained, so a command
post that starts (or comes back) sees the whole site at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scanner.mqtt.link import BrokerSettings, open_client
from scanner.mqtt.topics import GateTopics, all_gates_alerts, all_gates_health, gate_of
from scanner.sinks.mqtt import FORMAT_VERSION, AckMessage
from scanner.store import gates as gate_store
from scanner.store.db import Store

if TYPE_CHECKING:
    import paho.mqtt.client as paho

_LOGGER = logging.getLogger(__name__)

DEFAULT_ID = "command-post"
# An acknowledgement waits this long for the broker to take it before the page is told it is
# queued; on a site network the broker answers in milliseconds.
ACK_SEND_TIMEOUT_S = 5.0


class CommandPost:
    """Subscribes to every gate; publishes acknowledgements to one."""

    def __init__(
        self, settings: BrokerSettings, store: Store, wall: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self.wall = wall
        self.name = settings.client_id or DEFAULT_ID
        self.counters = {"alerts": 0, "repeated": 0, "health": 0, "bad": 0, "acks_sent": 0}
        self._client: paho.Client = open_client(settings, client_id=self.name)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_args: self._subscribed.set()
        self._started = False

    def start(self) -> None:
        s = self.settings
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected())

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    def _on_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if getattr(reason, "is_failure", False):
            _LOGGER.warning("broker refused the command post: %s", reason)
            return
        # Again on every connect: a broker that lost its sessions has lost our subscription.
        client.subscribe([(all_gates_alerts(), 1), (all_gates_health(), 1)])

    def _on_message(self, _client: paho.Client, _userdata: Any, message: Any) -> None:
        where = gate_of(message.topic)
        if where is None:
            return
        site, gate = where
        try:
            data = json.loads(bytes(message.payload))
            if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
                raise ValueError("not a version-1 message")
            now = self.wall()
            if message.topic == GateTopics(site, gate).alerts:
                if gate_store.apply_alert(self.store, site, gate, data, now):
                    self.counters["alerts"] += 1
                else:
                    self.counters["repeated"] += 1
            elif message.topic == GateTopics(site, gate).core_health:
                gate_store.apply_health(self.store, site, gate, data, now)
                self.counters["health"] += 1
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            self.counters["bad"] += 1
            _LOGGER.warning("message on %s dropped: %s", message.topic, exc)
        except Exception:
            # The store refused (disk full, locked too long): paho's thread must go on; the
            # broker re-sends nothing already acknowledged, so the gate's next health or
            # transition is what brings the screen back up to date.
            self.counters["bad"] += 1
            _LOGGER.exception("message on %s could not be stored", message.topic)

    def acknowledge(self, site: str, gate: str, alert_id: str, user: str, note: str) -> bool:
        """Send an acknowledgement to the gate (QoS 1; the broker holds it for a gate away).

        True when the broker has it; False when the broker is away: paho then keeps it and
        sends it after reconnecting (lost only if this process stops before that).
        """
        ack = AckMessage(alert_id, user, note, self.name, self.wall())
        info = self._client.publish(GateTopics(site, gate).acks, ack.to_payload(), qos=1)
        self.counters["acks_sent"] += 1
        try:
            info.wait_for_publish(timeout=ACK_SEND_TIMEOUT_S)
            return bool(info.is_published())
        except (RuntimeError, ValueError):
            return False
