"""Fixtures of the MQTT tests: a real Mosquitto on loopback (TLS, per-client certificates, ACL)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.mqtt_support import GATE, MOSQUITTO, SITE, Broker, Proxy, make_broker

NODES = ["inside", "gate"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (.ci/setup installs it)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    b = make_broker(tmp_path / "broker", SITE, GATE, NODES)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def proxy(broker: Broker) -> Iterator[Proxy]:
    p = Proxy(broker.port)
    p.up()
    yield p
    p.down()
