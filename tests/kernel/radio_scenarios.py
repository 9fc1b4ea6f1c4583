"""The kernel-radio scenarios: our live capture code against the Linux 802.11 and Bluetooth stacks.

Runs as root inside the test VM (``vm.py`` boots it), where ``mac80211_hwsim`` gives virtual
Wi-Fi radios that really transmit to each other and ``hci_vhci`` with BlueZ's ``btvirt`` gives
virtual Bluetooth controllers under a real ``bluetoothd``. With ``--hardware`` it runs on a Pi
against its real adapters instead, and the scenarios that need simulated peers (a scanning
station, an access point, advertisers we control) report themselves as not applicable.

It only gathers evidence: every record our sources emit (JSON lines), the frames they recorded,
an unfiltered reference capture, the health states in order, and how long each step took. The
pytest tests in this folder judge that evidence on the host, where Python is fast.

Python under TCG emulation is slow (imports take tens of seconds), so this is one process for
every scenario, and the waits below are generous bounds on what a real kernel answers within
milliseconds, not expected durations.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger("radio_scenarios")

# hwsim radios: ours (the capture interface), an access point, a station.
CAPTURE_IFACE = "wlan0"
AP_IFACE = "wlan1"
STA_IFACE = "wlan2"
AP_SSID = "checkpoint-kernel"
AP_CHANNEL = 6
# An EtherType reserved for local experiments (IEEE 802 "Local Experimental Ethertype 1").
TEST_ETHERTYPE = 0x88B5
ETH_P_ALL = 0x0003

# BLE payloads (AD structures after the flags), one per advertising controller.
BLE_FLAGS = "020106"
BLE_PAYLOADS = {
    # Apple Continuity Nearby Info: an iPhone, idle and locked.
    "continuity": "0aff4c001005031c5a3b9e",
    # Google Fast Pair service data with a 3-byte model id, and the service in the UUID list.
    "fast_pair": "03032cfe06162cfef52494",
    # iBeacon: Apple manufacturer data, type 0x02 length 0x15, UUID, major 1, minor 2, power.
    "ibeacon": "1aff4c000215000102030405060708090a0b0c0d0e0f00010002c5",
}
BLUETOOTHD = "/usr/libexec/bluetooth/bluetoothd"
# How long bluetoothd keeps a device object after its last report (30 s by default). Longer
# than the whole suite, so the daemon scenario always starts with the objects the in-process
# scans left: the case where a new scan's unchanged reports reach no D-Bus client.
TEMPORARY_TIMEOUT_S = 600


def _now() -> float:
    return time.monotonic()


def _run(*cmd: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def _wait(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = _now() + timeout_s
    while _now() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        out["record"] = type(value).__name__
        return out
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class JsonlSink:
    """A source sink writing every record as a JSON line, also kept in memory for waits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w")
        self._lock = threading.Lock()
        self.records: list[Any] = []

    def __call__(self, event: Any) -> None:
        line = json.dumps({"t_mono": _now(), **_jsonable(event)})
        with self._lock:
            self.records.append(event)
            self._file.write(line + "\n")
            self._file.flush()

    def of(self, name: str) -> list[Any]:
        with self._lock:
            return [r for r in self.records if type(r).__name__ == name]

    def mark(self, label: str, **fields: Any) -> None:
        """A scenario step in the same timeline as the records."""
        line = json.dumps({"t_mono": _now(), "record": "Mark", "label": label, **fields})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class Results:
    """results.json: per scenario, whether it ran to its end, its error, its timings."""

    def __init__(self, out: Path) -> None:
        self.path = out / "results.json"
        self.data: dict[str, Any] = {"started_mono": _now(), "scenarios": {}}
        self._flush()

    def _flush(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    @contextlib.contextmanager
    def scenario(self, name: str) -> Iterator[dict[str, Any]]:
        entry: dict[str, Any] = {"status": "running"}
        self.data["scenarios"][name] = entry
        self._flush()
        t0 = _now()
        try:
            yield entry
        except NotApplicableError as exc:
            entry["status"] = "not_applicable"
            entry["reason"] = str(exc)
        except Exception as exc:  # recorded for the host test to show, then the next scenario
            entry["status"] = "error"
            entry["error"] = f"{exc!r}\n{traceback.format_exc()}"
        else:
            entry["status"] = "done"
        finally:
            entry["elapsed_s"] = round(_now() - t0, 2)
            self._flush()

    def note(self, key: str, value: Any) -> None:
        self.data[key] = value
        self._flush()


class NotApplicableError(Exception):
    """The scenario needs simulated peers that real hardware does not have."""


# -- Wi-Fi -------------------------------------------------------------------------------------


def iface_type(iface: str) -> str | None:
    done = _run("iw", "dev", iface, "info", check=False)
    match = re.search(r"^\s*type (\S+)", done.stdout, re.MULTILINE)
    return match.group(1) if match else None


def iface_addr(iface: str) -> str:
    return Path(f"/sys/class/net/{iface}/address").read_text().strip()


def iface_phy(iface: str) -> str:
    return Path(f"/sys/class/net/{iface}/phy80211/name").read_text().strip()


class ReferenceCapture:
    """An unfiltered AF_PACKET capture on the monitor interface: what the kernel delivered
    before any BPF filter, to compare with what our filtered socket let through."""

    def __init__(self, iface: str, path: Path) -> None:
        from scanner.sources.wifi.recorder import PcapWriter

        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.bind((iface, 0))
        self._sock.settimeout(0.2)
        self._writer = PcapWriter(str(path), 127)
        self._stop = threading.Event()
        self.count = 0
        self._thread = threading.Thread(target=self._run, name="reference", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.count += 1
            self._writer.write(time.time(), data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._sock.close()
        self._writer.close()


def send_station_data(iface: str, dst: str, count: int) -> None:
    """Ethernet frames from the associated station to the AP: mac80211 sends them as to-DS
    data frames (QoS data when the AP has WMM)."""
    src = bytes.fromhex(iface_addr(iface).replace(":", ""))
    dst_b = bytes.fromhex(dst.replace(":", ""))
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((iface, TEST_ETHERTYPE))
        for i in range(count):
            payload = f"checkpoint-kernel-{i}".encode().ljust(46, b"\0")
            sock.send(dst_b + src + TEST_ETHERTYPE.to_bytes(2, "big") + payload)
            time.sleep(0.05)


def scan_trigger(freqs: list[str]) -> None:
    """Start a scan on the station and give it time to run. Not ``iw scan``, which waits for
    the results and has been seen to wait past a minute under emulation; a trigger refused
    because the previous scan still runs (EBUSY) is fine, the next one goes."""
    _run("iw", "dev", STA_IFACE, "scan", "trigger", "freq", *freqs, check=False)
    # A 2.4 GHz scan dwells tens of milliseconds per channel; emulation makes it slower.
    time.sleep(3.0)


def start_hostapd(out: Path) -> subprocess.Popen[bytes]:
    conf = out / "hostapd.conf"
    conf.write_text(
        f"interface={AP_IFACE}\ndriver=nl80211\nssid={AP_SSID}\nhw_mode=g\n"
        f"channel={AP_CHANNEL}\nwmm_enabled=1\n"
    )
    log = (out / "hostapd.log").open("wb")
    proc = subprocess.Popen(["hostapd", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    if not _wait(lambda: "AP-ENABLED" in (out / "hostapd.log").read_text(errors="replace"), 30):
        raise RuntimeError("hostapd did not enable the access point")
    return proc


def station_connect(attempts: int = 5) -> int:
    """Associate the station with the AP; the number of attempts it took.

    mac80211 gives an association response 3 x 200 ms; hostapd is a user-space process, and
    under emulation on a busy machine it can miss that, leaving the station authenticated
    only. ``iw connect`` does not try again by itself (no wpa_supplicant here), so we do."""
    _run("ip", "link", "set", STA_IFACE, "up")

    def associated() -> bool:
        return "Connected to" in _run("iw", "dev", STA_IFACE, "link", check=False).stdout

    for attempt in range(1, attempts + 1):
        _run("iw", "dev", STA_IFACE, "connect", AP_SSID, check=False)
        if _wait(associated, 10, 0.5):
            return attempt
        _run("iw", "dev", STA_IFACE, "disconnect", check=False)
    raise RuntimeError(f"{STA_IFACE} did not associate with {AP_SSID} in {attempts} attempts")


def wifi_scenarios(out: Path, results: Results, hardware: bool) -> None:
    from scanner.sources.wifi.live import build_source

    iface = os.environ.get("CHECKPOINT_WIFI_IFACE", CAPTURE_IFACE)
    peers: list[subprocess.Popen[bytes]] = []
    try:
        # 1. Monitor-mode setup by our code, the kernel BPF filter, data and null frames.
        with results.scenario("wifi_monitor_filter_data") as entry:
            entry["type_before"] = iface_type(iface)
            if not hardware:
                peers.append(start_hostapd(out))
                entry["connect_attempts"] = station_connect()
                entry["ap_mac"] = iface_addr(AP_IFACE)
                entry["sta_mac"] = iface_addr(STA_IFACE)
            sink = JsonlSink(out / "wifi_monitor.jsonl")
            source = build_source(
                {
                    "interface": iface,
                    "channels": [str(AP_CHANNEL)],
                    "status_interval_s": 2.0,
                    "record_path": str(out / "wifi_ours.pcap"),
                },
                sink,
            )
            t0 = _now()
            source.start()
            reference = None
            try:
                if not _wait(lambda: source.state == "ok", 60):
                    raise RuntimeError(f"no ok state: {source.state}: {source.message}")
                entry["ok_after_s"] = round(_now() - t0, 2)
                entry["type_after"] = iface_type(iface)
                reference = ReferenceCapture(iface, out / "wifi_reference.pcap")
                sink.mark("reference_started")
                if hardware:
                    time.sleep(30)
                else:
                    # Data frames, then a scan while associated: mac80211 tells the AP it is
                    # going off channel with a null frame (power management bit set), sends
                    # probe requests, and comes back with another null frame.
                    send_station_data(STA_IFACE, entry["ap_mac"], 20)
                    scan_trigger(["2437"])
                    send_station_data(STA_IFACE, entry["ap_mac"], 20)
                    scan_trigger(["2437"])
                sink.mark("traffic_done")
            finally:
                if reference is not None:
                    entry["reference_frames"] = reference.count
                    reference.close()
                source.stop()
                sink.close()
            entry["counters"] = dict(source.counters)

        # 2. Channel hopping over 1, 6, 11 with a station scanning every channel.
        with results.scenario("wifi_hopping") as entry:
            if hardware:
                raise NotApplicableError("needs a scanning station we control")
            _run("iw", "dev", STA_IFACE, "disconnect", check=False)
            entry["sta_mac"] = iface_addr(STA_IFACE)
            sink = JsonlSink(out / "wifi_hopping.jsonl")
            source = build_source(
                {
                    "interface": iface,
                    "channels": ["1", "6", "11"],
                    "dwell_ms": 200,
                    "status_interval_s": 2.0,
                },
                sink,
            )
            source.start()
            try:
                if not _wait(lambda: source.state == "ok", 60):
                    raise RuntimeError(f"no ok state: {source.state}: {source.message}")

                def heard_all() -> bool:
                    freqs = {f.freq_mhz for f in sink.of("WifiFrame") if f.subtype == "probe_req"}
                    return {2412, 2437, 2462} <= freqs

                # Each scan visits every 2.4 GHz channel for tens of milliseconds while we dwell
                # 200 ms on each of three: a few scans give every channel a chance to overlap.
                scans = 0
                deadline = _now() + 90
                while not heard_all() and _now() < deadline:
                    scan_trigger(["2412", "2437", "2462"])
                    scans += 1
                entry["scans"] = scans
                entry["plan_freqs"] = [2412, 2437, 2462]

                # 3. The interface deleted mid-capture, then re-added (managed, as a
                #    hot-plugged adapter comes back): our code must say so and recover alone.
                phy = iface_phy(iface)
                sink.mark("iface_deleted")
                t_del = _now()
                _run("iw", "dev", iface, "del")
                faulted = _wait(lambda: source.state == "fault", 30)
                entry["fault_after_s"] = round(_now() - t_del, 2) if faulted else None
                entry["fault_message"] = source.message
                time.sleep(2.0)
                sink.mark("iface_added")
                t_add = _now()
                _run("iw", "phy", phy, "interface", "add", iface, "type", "managed")
                n_before = len(sink.of("WifiFrame"))
                recovered = _wait(lambda: source.state == "ok", 90)
                entry["recovered_after_s"] = round(_now() - t_add, 2) if recovered else None
                entry["type_after_recovery"] = iface_type(iface)
                deadline = _now() + 60
                while len(sink.of("WifiFrame")) == n_before and _now() < deadline:
                    scan_trigger(["2412", "2437", "2462"])
                sink.mark("after_recovery_scans")
                entry["frames_after_recovery"] = len(sink.of("WifiFrame")) - n_before
            finally:
                source.stop()
                sink.close()
            entry["counters"] = dict(source.counters)
    finally:
        for proc in peers:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


# -- BLE ---------------------------------------------------------------------------------------


def mgmt_indexes() -> list[str]:
    """Controllers the kernel's management interface lists (sysfs shows them earlier, while
    they are still being set up and mgmt answers "Invalid Index")."""
    done = _run("btmgmt", "info", check=False, timeout=20)
    return sorted(re.findall(r"^(hci\d+):\s+Primary controller", done.stdout, re.MULTILINE))


def bluez_adapters() -> list[str]:
    """The adapters bluetoothd has taken on (its org.bluez.Adapter1 objects)."""
    done = _run(
        "dbus-send", "--system", "--print-reply", "--dest=org.bluez", "/",
        "org.freedesktop.DBus.ObjectManager.GetManagedObjects", check=False, timeout=20,
    )  # fmt: skip
    return sorted(set(re.findall(r'object path "/org/bluez/(hci\d+)"', done.stdout)))


def bluez_devices() -> list[str]:
    """The device objects bluetoothd holds (its org.bluez.Device1 objects)."""
    done = _run(
        "dbus-send", "--system", "--print-reply", "--dest=org.bluez", "/",
        "org.freedesktop.DBus.ObjectManager.GetManagedObjects", check=False, timeout=20,
    )  # fmt: skip
    return sorted(set(re.findall(r'object path "/org/bluez/(hci\d+/dev_[0-9A-F_]+)"', done.stdout)))


def payload_name(advert: Any) -> str | None:
    """Which of our advertisers an advert came from, by its content (the kernel advertises
    non-connectable sets from a random address, so the address does not tell)."""
    apple = advert.manufacturer_data.get(0x004C, b"")
    if apple.startswith(b"\x10"):
        return "continuity"
    if apple.startswith(b"\x02\x15"):
        return "ibeacon"
    if any(k.startswith("0000fe2c") for k in advert.service_data):
        return "fast_pair"
    return None


class BluetoothStack:
    """btvirt's virtual controllers and bluetoothd on the VM's own system bus."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.btvirt: subprocess.Popen[bytes] | None = None
        self.bluetoothd: subprocess.Popen[bytes] | None = None
        self.dbus_pid: int | None = None
        self._bluetoothd_runs = 0

    def start_dbus(self) -> None:
        Path("/run/dbus").mkdir(parents=True, exist_ok=True)
        done = _run("dbus-daemon", "--system", "--fork", "--nopidfile", "--print-pid")
        self.dbus_pid = int(done.stdout.split()[0])

    @staticmethod
    def warm_crypto() -> None:
        """Load and self-test the kernel crypto btvirt's emulated controllers use (AF_ALG
        cmac(aes) and ecb(aes)) before any controller exists. Otherwise btvirt blocks on that
        loading while the kernel sends the first controller its HCI Reset, which times out
        (2 s) under emulation and leaves hci0 dead ("Opcode 0x0c03 failed: -110")."""
        for kind, name in (("hash", "cmac(aes)"), ("skcipher", "ecb(aes)")):
            with socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0) as alg:
                alg.bind((kind, name))

    def start_btvirt(self, controllers: int) -> None:
        self.warm_crypto()
        log = (self.out / "btvirt.log").open("ab")
        self.btvirt = subprocess.Popen(
            ["btvirt", f"-l{controllers}"], stdout=log, stderr=subprocess.STDOUT
        )
        if not _wait(lambda: len(mgmt_indexes()) >= controllers, 30, 0.5):
            raise RuntimeError(f"btvirt made {mgmt_indexes()}, not {controllers} controllers")

    def stop_btvirt(self) -> None:
        if self.btvirt is not None:
            self.btvirt.terminate()
            self.btvirt.wait(10)
            self.btvirt = None
        if not _wait(lambda: not mgmt_indexes(), 30, 0.5):
            raise RuntimeError(f"controllers stayed after btvirt ended: {mgmt_indexes()}")

    def start_bluetoothd(self) -> None:
        self._bluetoothd_runs += 1
        log = (self.out / f"bluetoothd-{self._bluetoothd_runs}.log").open("wb")
        conf = self.out / "main.conf"
        conf.write_text(f"[General]\nTemporaryTimeout = {TEMPORARY_TIMEOUT_S}\n")
        self.bluetoothd = subprocess.Popen(
            [BLUETOOTHD, "-n", "--experimental", "-f", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def owned() -> bool:
            done = _run(
                "dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:org.bluez",
                check=False,
            )  # fmt: skip
            return "boolean true" in done.stdout

        if not _wait(owned, 30, 0.5):
            raise RuntimeError("bluetoothd did not take org.bluez")

    def stop_bluetoothd(self) -> None:
        if self.bluetoothd is not None:
            self.bluetoothd.send_signal(signal.SIGTERM)
            self.bluetoothd.wait(15)
            self.bluetoothd = None

    def advertise(self, index: int, payload_hex: str) -> None:
        idx = str(index)
        for args in (("power", "off"), ("le", "on"), ("bredr", "off"), ("power", "on")):
            _run("btmgmt", "--index", idx, *args, check=False, timeout=20)
        _run("btmgmt", "--index", idx, "add-adv", "-d", BLE_FLAGS + payload_hex, "1", timeout=20)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_bluetoothd()
        with contextlib.suppress(Exception):
            self.stop_btvirt()
        if self.dbus_pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.dbus_pid, signal.SIGTERM)


def ble_scenarios(out: Path, results: Results, hardware: bool) -> None:
    from scanner.sources.ble.classify import classify
    from scanner.sources.ble.live import build_source

    stack = BluetoothStack(out)

    def setup_advertisers() -> None:
        # bluetoothd clears every advertising instance of an adapter as it takes the adapter
        # on: advertise only once it has them all, or an early instance silently vanishes.
        if not _wait(lambda: len(bluez_adapters()) >= 1 + len(BLE_PAYLOADS), 60, 0.5):
            raise RuntimeError(f"bluetoothd has adapters {bluez_adapters()} only")
        for index, name in enumerate(BLE_PAYLOADS, start=1):
            stack.advertise(index, BLE_PAYLOADS[name])

    try:
        with results.scenario("ble_stack_up") as entry:
            if hardware:
                raise NotApplicableError("uses the Pi's own bluetoothd and adapter")
            t0 = _now()
            stack.start_dbus()
            stack.start_btvirt(1 + len(BLE_PAYLOADS))
            stack.start_bluetoothd()
            entry["controllers"] = mgmt_indexes()
            setup_advertisers()
        if not hardware and results.data["scenarios"]["ble_stack_up"]["status"] != "done":
            return
            entry["setup_s"] = round(_now() - t0, 2)

        sink = JsonlSink(out / "ble.jsonl")
        adapter = os.environ.get("CHECKPOINT_BLE_ADAPTER", "hci0")
        # btvirt (BlueZ 5.66's emulator) sends each advertiser's report once per scan start,
        # not at every advertising interval as a radio does: dropping BlueZ's objects mid-scan
        # (rereport_s) would lose them for good here. Off, so that the objects also outlive
        # these scans into the daemon scenario (bluetoothd keeps them: TEMPORARY_TIMEOUT_S).
        # Re-reporting is tested against the fake bluetoothd, whose adverts repeat.
        section = {"adapter": adapter, "status_interval_s": 2.0, "rereport_s": 0}
        source = build_source(section, sink)
        classes: dict[str, Any] = {}

        def class_of(advert: Any) -> None:
            # Every distinct classification of each advertiser's adverts, with their RSSIs.
            got = classes.setdefault(payload_name(advert) or "other", {"classes": [], "rssi": []})
            cls = _jsonable(classify(advert))
            if cls not in got["classes"]:
                got["classes"].append(cls)
            if advert.rssi_dbm not in got["rssi"]:
                got["rssi"].append(advert.rssi_dbm)

        def heard(since: float) -> bool:
            got = {payload_name(a) for a in sink.of("BleAdvert") if a.mono >= since}
            return got >= set(BLE_PAYLOADS)

        try:
            with results.scenario("ble_passive_classified") as entry:
                t0 = _now()
                source.start()
                if not _wait(lambda: source.state == "ok", 90, 0.5):
                    raise RuntimeError(f"no ok state: {source.state}: {source.message}")
                entry["ok_after_s"] = round(_now() - t0, 2)
                entry["message"] = source.message
                if hardware:
                    _wait(lambda: len(sink.of("BleAdvert")) > 0, 60)
                else:
                    entry["all_heard"] = _wait(lambda: heard(0.0), 90)
                entry["heard_after_s"] = round(_now() - t0, 2)
                for advert in sink.of("BleAdvert"):
                    class_of(advert)
                entry["classes"] = classes
            if not hardware and not results.data["scenarios"]["ble_passive_classified"].get(
                "all_heard"
            ):
                return  # nothing heard to begin with: restarts would show nothing more

            with results.scenario("ble_bluetoothd_restart") as entry:
                if hardware:
                    raise NotApplicableError("restarting the Pi's bluetoothd is not ours to do")
                sink.mark("bluetoothd_stop")
                t0 = _now()
                stack.stop_bluetoothd()
                entry["left_ok"] = _wait(lambda: source.state != "ok", 30, 0.2)
                entry["state_while_down"] = source.state
                entry["message_while_down"] = source.message
                time.sleep(2.0)
                sink.mark("bluetoothd_start")
                t_start = _now()
                stack.start_bluetoothd()
                # bluetoothd powers the controllers off when it exits: advertise again.
                setup_advertisers()
                entry["ok_again"] = _wait(lambda: source.state == "ok", 90, 0.5)
                entry["ok_after_s"] = round(_now() - t_start, 2)
                entry["all_heard"] = _wait(lambda: heard(t_start), 90)
                entry["heard_after_s"] = round(_now() - t_start, 2)
                entry["total_s"] = round(_now() - t0, 2)

            with results.scenario("ble_controller_removed") as entry:
                if hardware:
                    raise NotApplicableError("needs a controller we can unplug")
                sink.mark("controllers_removed")
                stack.stop_btvirt()
                entry["left_ok"] = _wait(lambda: source.state != "ok", 30, 0.2)
                entry["state_while_gone"] = source.state
                entry["message_while_gone"] = source.message
                time.sleep(3.0)
                sink.mark("controllers_back")
                t_back = _now()
                stack.start_btvirt(1 + len(BLE_PAYLOADS))
                setup_advertisers()
                entry["ok_again"] = _wait(lambda: source.state == "ok", 120, 0.5)
                entry["ok_after_s"] = round(_now() - t_back, 2)
                entry["all_heard"] = _wait(lambda: heard(t_back), 90)
                entry["heard_after_s"] = round(_now() - t_back, 2)
        finally:
            source.stop()
            sink.close()
            results.note("ble_counters", dict(source.counters))
            results.note("ble_stopped_mono", _now())
        if not hardware:
            # The advertisers and the scanning station are still there for the daemons.
            daemon_scenario(out, results)
    finally:
        stack.close()


def daemon_scenario(out: Path, results: Results) -> None:
    """The daemons as systemd starts them: ``checkpoint core``, ``checkpoint capture wifi``
    and ``checkpoint capture ble`` (each recording what it captures), over the core's socket."""
    import sqlite3
    import sys

    with results.scenario("daemons") as entry:
        work = Path("/tmp/checkpoint-daemons")  # SQLite's WAL wants a local file system
        work.mkdir(parents=True, exist_ok=True)
        cfg = work / "checkpoint.toml"
        cfg.write_text(
            f'[site]\nstate_dir = "{work}"\n[transport]\nsocket = "{work}/core.sock"\n'
            f'[wifi]\ninterface = "{CAPTURE_IFACE}"\nchannels = ["1", "6", "11"]\n'
            '[ble]\nadapter = "hci0"\n'
        )
        procs: dict[str, subprocess.Popen[bytes]] = {}

        def start(name: str, *args: str) -> None:
            log = (out / f"daemon-{name}.log").open("wb")
            cmd = [sys.executable, "-m", "scanner.cli.main", "-v", *args, "--config", str(cfg)]
            procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)

        def health() -> dict[str, str]:
            db = work / "checkpoint.db"
            if not db.exists():
                return {}
            with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
                rows = conn.execute("SELECT sensor, state FROM sensor_health").fetchall()
            return {str(sensor): str(state) for sensor, state in rows}

        try:
            t0 = _now()
            start("core", "core")
            # Each daemon imports its libraries first: tens of seconds under emulation.
            if not _wait((work / "core.sock").exists, 180, 0.5):
                raise RuntimeError("the core daemon did not open its socket")
            entry["core_up_s"] = round(_now() - t0, 2)
            start("wifi", "capture", "wifi", "--record", str(out / "daemon_wifi.pcap"))
            # What bluetoothd still holds from the in-process scans as the daemon starts: a
            # device object it keeps (30 s after its last advert) makes no InterfacesAdded.
            entry["since_ble_stop_s"] = round(_now() - results.data["ble_stopped_mono"], 2)
            entry["bluez_devices_at_start"] = bluez_devices()
            start("ble", "capture", "ble", "--record", str(out / "daemon_ble.jsonl"))

            def both_ok() -> bool:
                states = health()
                return states.get("wifi") == "ok" and states.get("ble") == "ok"

            entry["both_ok"] = _wait(both_ok, 180, 1.0)
            entry["both_ok_s"] = round(_now() - t0, 2)
            for _ in range(5):
                scan_trigger(["2412", "2437", "2462"])
            entry["health"] = health()

            def ble_recorded() -> bool:
                # "ok" means the scan started; the advertisers' first reports can come seconds
                # later under emulation. Wait for them (bounded) before stopping the daemons.
                path = out / "daemon_ble.jsonl"
                if not path.exists():
                    return False
                text = path.read_text(encoding="utf-8", errors="replace").replace(" ", "")
                # The recorder flushes every 64 adverts: a short wait may see them only at exit.
                return all(f'"76":"{prefix}' in text for prefix in ("1005", "0215"))

            entry["ble_recorded"] = _wait(ble_recorded, 60, 1.0)
            entry["ble_recorded_s"] = round(_now() - t0, 2)
        finally:
            codes = {}
            for name in ("wifi", "ble", "core"):
                proc = procs.get(name)
                if proc is None:
                    continue
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    codes[name] = proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    codes[name] = proc.wait(10)
            entry["exit_codes"] = codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="folder for the evidence")
    parser.add_argument("--hardware", action="store_true", help="real adapters, no simulation")
    parser.add_argument("--only", choices=["wifi", "ble"], help="run one radio's scenarios")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=out / "scenarios.log",
        level=logging.DEBUG,
        format="%(relativeCreated)8.0f %(threadName)s %(name)s %(levelname)s %(message)s",
    )
    results = Results(out)
    t0 = _now()
    # Timed apart from the scenarios: imports are slow under emulation.
    import bleak  # noqa: F401
    import scapy.arch
    import scapy.layers.dot11  # noqa: F401

    import scanner.sources.ble.live
    import scanner.sources.wifi.live  # noqa: F401

    results.note("import_s", round(_now() - t0, 2))
    if args.only in (None, "wifi"):
        wifi_scenarios(out, results, args.hardware)
    if args.only in (None, "ble"):
        ble_scenarios(out, results, args.hardware)
    results.note("total_s", round(_now() - results.data["started_mono"], 2))
    results.note("finished", True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
