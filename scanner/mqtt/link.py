"""How to reach the MQTT broker: the ``[mqtt]`` section, and paho-mqtt clients opened from it.

Every client keeps a persistent session (``clean_session`` off, a fixed client id): the broker
then holds QoS 1 messages for a subscriber that is away and re-sends unacknowledged ones after a
reconnect, which is what lets a core restart or a network drop lose nothing. TLS with a
certificate per node is how the broker tells nodes apart (Mosquitto's
``use_identity_as_username``), so one stolen node cannot publish as another; a password is the
fallback for a broker on loopback.

paho-mqtt is an optional dependency (the ``[mqtt]`` extra): it is imported only when a client is
opened, so a machine without it still replays recordings and runs one Pi over the Unix socket.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.config import ConfigError

if TYPE_CHECKING:
    import paho.mqtt.client as paho

_LOGGER = logging.getLogger(__name__)

# MQTT's registered ports: 1883 plain (loopback only), 8883 over TLS.
PLAIN_PORT = 1883
TLS_PORT = 8883
# The broker declares a client gone after 1.5 keepalives without a packet; 30 s notices a node
# that lost power within a minute without chattering over a radio-quiet site's network.
DEFAULT_KEEPALIVE_S = 30


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where the broker is and how this client proves who it is."""

    host: str = "127.0.0.1"
    port: int = PLAIN_PORT
    site: str = "site"
    gate: str = "gate"
    client_id: str = ""
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = DEFAULT_KEEPALIVE_S

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, default_client_id: str) -> BrokerSettings:
        """The ``[mqtt]`` section; ``scanner.config_check`` has already checked names and ranges."""

        def path(key: str) -> Path | None:
            value = table.get(key)
            return None if value in (None, "") else Path(str(value))

        ca = path("ca_file")
        port = int(table.get("port", TLS_PORT if ca is not None else PLAIN_PORT))
        settings = cls(
            host=str(table.get("host", "127.0.0.1")),
            port=port,
            site=str(table.get("site", "site")),
            gate=str(table.get("gate", "gate")),
            client_id=str(table.get("client_id", default_client_id)),
            username=table.get("username"),
            password_file=path("password_file"),
            ca_file=ca,
            cert_file=path("cert_file"),
            key_file=path("key_file"),
            keepalive_s=int(table.get("keepalive_s", DEFAULT_KEEPALIVE_S)),
        )
        if (settings.cert_file is None) != (settings.key_file is None):
            raise ConfigError("[mqtt] cert_file and key_file go together")
        if settings.cert_file is not None and settings.ca_file is None:
            raise ConfigError("[mqtt] cert_file needs ca_file (the broker's CA) as well")
        return settings

    def password(self) -> str | None:
        """The password from its file (kept out of the config, which is world-readable)."""
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"[mqtt] password_file {self.password_file}: {exc.strerror}") from exc


def open_client(settings: BrokerSettings, *, client_id: str | None = None) -> paho.Client:
    """A paho client configured (not yet connected) for ``settings``, with a persistent session."""
    try:
        import paho.mqtt.client as paho_client
        from paho.mqtt.enums import CallbackAPIVersion
    except ImportError as exc:
        raise ConfigError("MQTT needs paho-mqtt: pip install 'checkpoint-scanner[mqtt]'") from exc
    cid = client_id or settings.client_id
    if not cid:
        # A persistent session is keyed by client id; a random one would start a new, empty
        # session on every reconnect and drop what the broker held.
        raise ConfigError("[mqtt] client_id is required for a persistent session")
    client = paho_client.Client(
        CallbackAPIVersion.VERSION2,
        client_id=cid,
        clean_session=False,
        protocol=paho_client.MQTTv311,
    )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password())
    if settings.tls:
        # Imported here: OpenSSL costs a core without a broker (the usual Pi) 6 MB of RSS.
        import ssl

        context = ssl.create_default_context(cafile=str(settings.ca_file))
        if settings.cert_file is not None and settings.key_file is not None:
            context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
        client.tls_set_context(context)
    # paho retries a lost connection itself between 1 s and 30 s: fast after a broker restart,
    # and never more often than a loaded broker on a Pi can take from a dozen nodes.
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client
