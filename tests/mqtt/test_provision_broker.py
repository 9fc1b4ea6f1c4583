"""firmware/provision.sh --broker: the Mosquitto config, CA, certificates and ACL it writes run a
real broker that lets each node publish only under its own name."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.mqtt.batch import ClockSync, encode_batch
from scanner.mqtt.ingest import CoreIngest
from scanner.mqtt.link import BrokerSettings
from scanner.mqtt.node import NodeOptions, NodePublisher
from scanner.mqtt.topics import GateTopics
from scanner.observations import WifiFrame
from scanner.runtime.transport import EventQueue
from scanner.runtime.transport.codec import encode_line
from tests.mqtt.mqtt_support import MOSQUITTO, Broker, connected_client, free_port

SYNCED = ClockSync(True, "timesyncd", 0.0)


def frame(n: int, ts: float, tag: str) -> WifiFrame:
    return WifiFrame(
        ts=ts,
        mono=0.0,
        subtype="probe_req",
        mac="02:00:00:00:00:02",
        random_mac=True,
        rssi_dbm=-50,
        freq_mhz=2412,
        ssid="",
        seq=n,
        fingerprint=tag,
        sensor="inside",
    )


PROVISION = Path(__file__).resolve().parents[2] / "firmware" / "provision.sh"


@pytest.fixture
def provisioned(tmp_path: Path) -> Iterator[Broker]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (.ci/setup installs it)")
    stage = tmp_path / "stage"
    result = subprocess.run(
        [
            str(PROVISION),
            "--root",
            str(stage),
            "--broker",
            "--site",
            "hq",
            "--gate",
            "north",
            "--node",
            "inside",
            "--node",
            "gate",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "would run: systemctl restart mosquitto.service" in result.stderr
    conf = (stage / "etc/mosquitto/conf.d/checkpoint.conf").read_text()
    # The staged files, on a free loopback port, with what Debian's mosquitto.conf adds.
    port = free_port()
    conf = conf.replace(" /etc/", f" {stage}/etc/").replace(
        "listener 8883", f"listener {port} 127.0.0.1"
    )
    data = tmp_path / "data"
    data.mkdir()
    head = (
        f"user {pwd.getpwuid(os.getuid()).pw_name}\npersistence true\n"
        f"persistence_location {data}/\nlog_dest stderr\n"
    )
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    (broker_dir / "mosquitto.conf").write_text(head + conf)
    pki = stage / "etc/checkpoint/mqtt"
    certs = {
        name: (pki / "clients" / f"{name}.crt", pki / "clients" / f"{name}.key")
        for name in ("inside", "gate", "core")
    }
    broker = Broker(broker_dir, port, pki / "ca.crt", certs)
    broker.start()
    yield broker
    broker.stop()


def test_provisioned_broker_carries_a_node_to_the_core_and_keeps_nodes_apart(
    provisioned: Broker, tmp_path: Path
) -> None:
    def settings(name: str) -> BrokerSettings:
        cert, key = provisioned.certs[name]
        return BrokerSettings(
            host="127.0.0.1",
            port=provisioned.port,
            site="hq",
            gate="north",
            ca_file=provisioned.ca,
            cert_file=cert,
            key_file=key,
            keepalive_s=5,
        )

    events = EventQueue(10_000)
    ingest = CoreIngest(settings("core"), events)
    ingest.start()
    node = NodePublisher(
        settings("inside"),
        NodeOptions("inside", "node", tmp_path / "s1", linger_s=0.05),
        lambda: SYNCED,
    )
    node.start()
    topics = GateTopics("hq", "north")
    try:
        deadline = time.monotonic() + 20
        while not (ingest.connected and node.connected):
            assert time.monotonic() < deadline, "the provisioned broker refused a client"
            time.sleep(0.05)
        time.sleep(0.3)
        now = time.time()
        # Gate's certificate publishing a batch as inside, on inside's topic: acknowledged by
        # the broker, delivered to nobody.
        forged = encode_batch(
            "inside",
            "forged",
            0,
            now,
            SYNCED,
            [encode_line(frame(n, now, "forged")) for n in range(20)],
        )
        intruder = connected_client(settings("gate"), "intruder")
        info = intruder.publish(topics.observations("inside"), forged, qos=1)
        info.wait_for_publish(timeout=10)
        intruder.disconnect()
        intruder.loop_stop()
        for n in range(20):
            node.sink(frame(n, now, "inside"))
        got: list[WifiFrame] = []
        deadline = time.monotonic() + 20
        while len(got) < 20 and time.monotonic() < deadline:
            event = events.get(timeout=0.1)
            if isinstance(event, WifiFrame):
                got.append(event)
        time.sleep(0.5)
        while (event := events.get_nowait()) is not None:
            if isinstance(event, WifiFrame):
                got.append(event)
    finally:
        node.close()
        ingest.close()
    assert [f.seq for f in got] == list(range(20))
    assert {f.fingerprint for f in got} == {"inside"}, "the ACL let gate publish as inside"
