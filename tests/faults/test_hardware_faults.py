"""Issue 9, hardware faults through the real-protocol doubles, seen where the guard sees them.

tests/sdr, tests/ble and tests/wifi check each live source against its double (rtl_tcp killed
and stalled, bluetoothd restarted, the Wi-Fi interface vanishing). Here the three live sources
run together the way ``checkpoint run`` runs them (supervisor, runner loop, in-process transport,
the real core writing the real store), and each fault is followed to ``/healthz``: the sensor
turns to a clear, actionable status within seconds, the other sensors stay ok, and it recovers
to ok by itself when the hardware comes back, without a restart of the process.

The doubles: our rtl_tcp server (the real protocol over TCP), a fake bluetoothd on a private
D-Bus system bus, and for Wi-Fi the capture socket (the OS boundary) raising the OSError the
kernel gives when the interface goes away (ENODEV), then refusing to reopen while it is gone.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from scanner.clock import SYSTEM_CLOCK
from scanner.core.options import CoreOptions
from scanner.runtime.build import core_loop_factory
from scanner.runtime.components import SourceComponent
from scanner.runtime.serve import serve
from scanner.runtime.supervisor import Supervisor
from scanner.runtime.transport import EventQueue, InProcessTransport
from scanner.sources.base import Sink, Source
from scanner.store.db import Store
from scanner.store.kiosk import issue_kiosk
from tests.fakes.bluez import FakeBluez, running_fake_bluez
from tests.fakes.rtl_tcp_server import FakeRtlTcpServer, synth_uplink
from tests.helpers.daemons import wait_for as poll

IPHONE = {76: bytes.fromhex("1005031c5a0b2e")}


def wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    return poll(cond, timeout, every=0.05)


class VanishingInterface:
    """The capture socket's OS boundary: frames while ``wlan1`` exists, ENODEV once it is gone
    (from the open socket and from every reopen), frames again when it is back."""

    def __init__(self) -> None:
        from scanner.sources.wifi.build import probe_request, probe_request_body, radiotap

        self.present = threading.Event()
        self.present.set()
        self.opened = 0
        self._frame = radiotap(rssi_dbm=-80, freq_mhz=2437) + probe_request(
            "da:00:00:00:00:01", 1, probe_request_body("")
        )

    def open(self, iface: str, _bpf: str) -> VanishingInterface.Socket:
        if not self.present.is_set():
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        self.opened += 1
        return VanishingInterface.Socket(self)

    @dataclass
    class Socket:
        owner: VanishingInterface

        def recv_frame(self) -> tuple[bytes, float | None] | None:
            if not self.owner.present.is_set():
                raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
            time.sleep(0.01)
            return self.owner._frame, time.time()

        def close(self) -> None:
            """Nothing to release."""


@dataclass
class Appliance:
    db: Path
    api: TestClient
    rtl_tcp: FakeRtlTcpServer
    bluez: FakeBluez
    wlan1: VanishingInterface

    def sensors(self) -> dict[str, dict[str, Any]]:
        body = self.api.get("/api/v1/health").json()
        return dict(body["sensors"])

    def status(self, sensor: str) -> tuple[str, str]:
        s = self.sensors().get(sensor)
        return (s["status"], s["message"]) if s else ("absent", "")

    def log(self, sensor: str) -> list[tuple[str, str]]:
        store = Store(self.db)
        try:
            rows = store.query(
                "SELECT state, message FROM health_log WHERE sensor = ? ORDER BY id", (sensor,)
            )
        finally:
            store.close()
        return [(r["state"], r["message"]) for r in rows]


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[Appliance]:
    from scanner.sources.ble import build_source as build_ble
    from scanner.sources.sdr.live import build_source as build_sdr
    from scanner.sources.wifi.live import WifiSource
    from scanner.sources.wifi.options import WifiOptions

    db = tmp_path / "checkpoint.db"
    Store(db).close()
    server = FakeRtlTcpServer(synth_uplink([890.2e6]), speed=1.0).start()
    wlan1 = VanishingInterface()
    sdr_section = {
        "transport": "rtl_tcp", "host": "127.0.0.1", "port": server.port, "rate": 1.0e6,
        "centres_mhz": [890.0], "dwell_s": 0.2, "read_bytes": 16384, "stall_s": 0.5,
        "connect_timeout_s": 1.0, "backoff_scale": 0.2, "status_every_s": 0.2,
    }  # fmt: skip

    def sdr(sink: Sink) -> Source:
        return build_sdr(sdr_section, sink, SYSTEM_CLOCK)

    def ble(sink: Sink) -> Source:
        return build_ble({"status_interval_s": 0}, sink, SYSTEM_CLOCK)

    def wifi(sink: Sink) -> Source:
        options = WifiOptions.from_mapping(
            {"interface": "wlan1", "setup_monitor": False, "hop": False, "dwell_ms": 5}
        )
        return WifiSource(options, sink, socket_factory=wlan1.open, linktype_of=lambda _i: 127)

    with running_fake_bluez(tmp_path) as bluez:
        events = EventQueue(20_000)
        transport = InProcessTransport(events)
        supervisor = Supervisor(SYSTEM_CLOCK)
        supervisor.add("core", core_loop_factory(str(db), CoreOptions(), events, SYSTEM_CLOCK))

        def component(name: str, build: Callable[[Sink], Source]) -> Callable[[], SourceComponent]:
            return lambda: SourceComponent(name, build, transport.sink)

        for name, build in (("wifi", wifi), ("ble", ble), ("sdr", sdr)):
            supervisor.add(name, component(name, build), critical=False)
        stop = threading.Event()
        runner = threading.Thread(
            target=serve, args=(supervisor,), kwargs={"ready_text": "test", "stop": stop}
        )
        runner.start()
        api = TestClient(create_app(ApiSettings(store_path=str(db))), base_url="http://localhost")
        # The details (messages) need a credential: the wall tablet's kiosk one.
        _, secret = issue_kiosk(Store(db), "test wall", time.time(), "test")
        api.headers["Authorization"] = f"Bearer {secret}"
        try:
            yield Appliance(db, api, server, bluez, wlan1)
        finally:
            stop.set()
            runner.join(timeout=30)
            server.stop()
    assert not runner.is_alive()


def test_each_hardware_fault_shows_clearly_and_recovers(appliance: Appliance) -> None:
    a = appliance
    a.bluez.tick("7C:00:00:00:00:01", IPHONE, 0.1)
    assert wait_for(
        lambda: all(a.status(sensor)[0] == "ok" for sensor in ("wifi", "ble", "sdr")), 20
    ), a.sensors()

    def others_ok(but: str) -> bool:
        return all(s["status"] == "ok" for name, s in a.sensors().items() if name != but)

    # -- rtl_tcp killed (dongle host gone): a fault that says what to check, then back.
    a.rtl_tcp.stop()
    assert wait_for(lambda: a.status("sdr")[0] == "fault", 10), a.sensors()["sdr"]
    assert "rtl_tcp" in a.status("sdr")[1]
    assert others_ok("sdr")
    a.rtl_tcp.accept_again()
    assert wait_for(lambda: a.status("sdr")[0] == "ok", 20), a.sensors()["sdr"]

    # -- rtl_tcp alive but sending no IQ (a stalled USB transfer).
    a.rtl_tcp.stall()
    assert wait_for(lambda: a.status("sdr")[0] in ("degraded", "fault"), 10), a.sensors()["sdr"]
    assert "IQ" in a.status("sdr")[1]
    a.rtl_tcp.resume()
    assert wait_for(lambda: a.status("sdr")[0] == "ok", 20), a.sensors()["sdr"]

    # -- the Wi-Fi adapter vanishes (USB unplugged): fault naming the interface, then back.
    opened = a.wlan1.opened
    a.wlan1.present.clear()
    assert wait_for(lambda: a.status("wifi")[0] == "fault", 10), a.sensors()["wifi"]
    assert "wlan1" in a.status("wifi")[1]
    time.sleep(1.5)  # it stays gone for a while: reopening fails and is retried
    assert a.status("wifi")[0] == "fault"
    assert others_ok("wifi")
    a.wlan1.present.set()
    assert wait_for(lambda: a.status("wifi")[0] == "ok", 20), a.sensors()["wifi"]
    assert a.wlan1.opened > opened

    # -- bluetoothd restarts (a package upgrade): adverts resume by themselves.
    ble_log = len(a.log("ble"))
    a.bluez.restart_bluetoothd(delay=2.0)
    assert wait_for(lambda: len(a.log("ble")) > ble_log and a.status("ble")[0] == "ok", 20), (
        a.sensors()["ble"]
    )
    a.bluez.untick()
    # The outage was said in words, and scanning came back.
    outage = a.log("ble")[ble_log:]
    assert any(s != "ok" and "bluetoothd" in m for s, m in outage), outage
    assert outage[-1][0] == "ok"

    # Every fault and recovery is in the health history the export and the tablet read.
    sdr_states = [s for s, _m in a.log("sdr")]
    assert sdr_states.count("fault") >= 1 and sdr_states[-1] == "ok", a.log("sdr")
    assert "degraded" in sdr_states or sdr_states.count("fault") >= 2, a.log("sdr")
    wifi_states = [s for s, _m in a.log("wifi")]
    assert "fault" in wifi_states and wifi_states[-1] == "ok", a.log("wifi")
    print("sdr:", a.log("sdr"), "\nwifi:", a.log("wifi"), "\nble:", a.log("ble"))
