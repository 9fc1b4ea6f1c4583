"""Sample records of every type, with every optional field filled, for the transport tests."""

from __future__ import annotations

import threading
import time

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.observations import (
    BleAdvert,
    Radio,
    SdrBurst,
    SensorState,
    SensorStatus,
    SourceEvent,
    WifiFrame,
)
from scanner.sources.base import Sink, Source, SourceOptions


def sample_records(i: int = 0) -> list[SourceEvent]:
    ts = 1_764_000_000.125 + i
    return [
        WifiFrame(
            ts=ts,
            mono=5000.5 + i,
            subtype="probe_req",
            mac="da:a1:19:00:00:%02x" % (i % 256),
            random_mac=True,
            rssi_dbm=-48,
            freq_mhz=2437,
            ssid="",
            seq=i % 4096,
            fingerprint="0a1b2c3d4e5f",
            bssid="ff:ff:ff:ff:ff:ff",
            dst="ff:ff:ff:ff:ff:ff",
            sensor="wifi:wlan1",
        ),
        WifiFrame(
            ts=ts,
            mono=5000.6 + i,
            subtype="qos_null",
            mac="00:11:22:33:44:55",
            random_mac=False,
            rssi_dbm=None,
            freq_mhz=None,
            ssid=None,
            seq=7,
            fingerprint="",
        ),
        BleAdvert(
            ts=ts,
            mono=5000.7 + i,
            address="4C:11:22:33:44:55",
            address_type="random",
            rssi_dbm=-61,
            tx_power=12,
            local_name="Pixel <b>7</b> \u00e9",
            manufacturer_data={76: bytes.fromhex("1005031c5a0b2e"), 6: b""},
            service_data={"0000fd6f-0000-1000-8000-00805f9b34fb": b"\x00\xff"},
            service_uuids=("0000180f-0000-1000-8000-00805f9b34fb",),
            adapter="hci1",
            sensor="ble",
        ),
        BleAdvert(
            ts=ts,
            mono=5000.8 + i,
            address="AA:BB:CC:DD:EE:FF",
            address_type="public",
            rssi_dbm=None,
        ),
        SdrBurst(
            ts=ts,
            mono=5000.9 + i,
            t_end=ts + 0.000577,
            freq_mhz=897.4,
            bandwidth_khz=200.0,
            power_dbfs=-31.25,
            snr_db=22.5,
            band="E-GSM-900 UL",
            gain_db=33.8,
        ),
        SdrBurst(
            ts=ts,
            mono=5001.0 + i,
            t_end=ts + 0.01,
            freq_mhz=832.0,
            bandwidth_khz=1080.0,
            power_dbfs=-40.0,
            snr_db=9.0,
            band=None,
        ),
        SensorStatus(
            ts=ts,
            mono=5001.1 + i,
            sensor="sdr",
            radio=Radio.SDR,
            state=SensorState.DEGRADED,
            message="no frames for 95 s",
            counters={"delivered": 10, "dropped_queue_full": 2},
            detail={"noise_floor_dbfs": -52.5, "channels": [1, 6, 11], "silent_s": None},
        ),
    ]


class CountingSource(Source):
    """A real Source subclass whose capture thread delivers numbered Wi-Fi frames.

    ``crash_after`` makes the thread raise after that many frames, as a capture loop does when
    its interface vanishes; ``fail_starts`` makes ``start`` raise that many times first.
    """

    radio = Radio.WIFI

    def __init__(
        self,
        sink: Sink,
        clock: Clock = SYSTEM_CLOCK,
        *,
        crash_after: int | None = None,
        interval_s: float = 0.002,
    ) -> None:
        super().__init__(SourceOptions(sensor="wifi:test"), sink, clock)
        self.crash_after = crash_after
        self.interval_s = interval_s
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.set_state(SensorState.STARTING)
        self._thread = threading.Thread(target=self._run, name="test-capture", daemon=True)
        self._thread.start()
        self.set_state(SensorState.OK)

    def _run(self) -> None:
        n = 0
        while not self.stopping:
            self.deliver(
                WifiFrame(
                    ts=self.clock.wall(),
                    mono=self.clock.monotonic(),
                    subtype="probe_req",
                    mac="da:00:00:00:00:01",
                    random_mac=True,
                    rssi_dbm=-40,
                    freq_mhz=2412,
                    ssid="",
                    seq=n,
                    fingerprint="ab",
                    sensor="wifi:test",
                )
            )
            n += 1
            if self.crash_after is not None and n >= self.crash_after:
                raise OSError(19, "No such device (wlan1 vanished)")
            time.sleep(self.interval_s)

    def stop(self) -> None:
        super().stop()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.set_state(SensorState.STOPPED)
