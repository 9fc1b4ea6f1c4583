"""A fake BlueZ on a private system bus: the far end of the wire for the BLE capture source.

``fake_bluez`` (a pytest fixture) starts a private ``dbus-daemon`` configured as a system bus
with its own Unix socket in a temporary folder, points ``DBUS_SYSTEM_BUS_ADDRESS`` at it, and
runs this file as a separate process that owns ``org.bluez`` and exports, with dbus-fast:

* the ObjectManager at ``/`` (GetManagedObjects, InterfacesAdded/InterfacesRemoved),
* ``org.bluez.Adapter1`` at ``/org/bluez/hci0`` (Powered, Discovering, Roles; StartDiscovery,
  StopDiscovery, SetDiscoveryFilter, GetDiscoveryFilters, RemoveDevice), with BlueZ's error
  names (NotReady when powered off, InProgress for a second StartDiscovery, Failed when
  stopping a discovery that is not running),
* ``org.bluez.Device1`` objects that appear with InterfacesAdded and change RSSI,
  ManufacturerData and ServiceData with PropertiesChanged, only while discovery or a monitor is
  on (as a real adapter reports nothing when it is not scanning), and, as bluetoothd does, only
  for what changed: RSSI by 8 dB or more, different data; every advert's data only in a
  discovery with DuplicateData. RemoveDevice drops a device's object, so its next advert
  creates it again,
* ``org.bluez.AdvertisementMonitorManager1`` on the adapter (RegisterMonitor, UnregisterMonitor;
  it reads the client's or-pattern monitor and calls Activate, then reports the adverts that
  match a pattern without any discovery, as passive scanning does; a client leaving the bus
  loses its monitors). Without it (``monitors=False``, bluetoothd without --experimental) the
  call fails with UnknownMethod, as BlueZ's does.

The test drives the fake through a line protocol on the process's stdin/stdout (one JSON object
each way per command), so the fake runs on its own interpreter and CPU time, like bluetoothd:
emit an advert, rotate a device's address, refuse power-on, "restart bluetoothd" (drop every
object, release the bus name, come back after a delay with a fresh adapter), and flood
thousands of adverts per second with sequence numbers the test can count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Protocol

import pytest

# dbus-fast reads each exported method's D-Bus signature from its annotations, evaluated in this
# module's namespace; these Annotated aliases are the Python type and the signature at once. The
# guard keeps the fixtures importable where the BLE extra is absent (the fake cannot run there).
with contextlib.suppress(ImportError):
    from dbus_fast.annotations import (
        DBusBool,
        DBusDict,
        DBusInt16,
        DBusObjectPath,
        DBusSignature,
        DBusStr,
    )
    from dbus_fast.signature import Variant

    _DBusStrings = Annotated[list[str], DBusSignature("as")]
    _DBusCompanyData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
    # No reply values: D-Bus's empty signature (a bare `None` reads as no signature at all).
    _DBusNothing = Annotated[None, DBusSignature("")]

BLUEZ = "org.bluez"
ADAPTER_PATH = "/org/bluez/hci0"
# Manufacturer id the flood uses to number its adverts (0xFFFF is the SIG's "for testing" id).
FLOOD_COMPANY = 0xFFFF
# Or-patterns per advertisement monitor that bluetoothd 5.66 hands the kernel intact: past 7 its
# one-byte command length wraps and the kernel refuses the monitor.
BLUEZ_MONITOR_MAX_PATTERNS = 7
# bluetoothd's RSSI_THRESHOLD: outside a filtered discovery, a known device's RSSI property
# changes only when the reading moved this much.
RSSI_DELTA_DB = 8

_DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">1000000000</limit>
</busconfig>
"""


class _AdapterOwner(Protocol):
    """What the fake adapter uses of the fake bluetoothd that owns it (defined after it)."""

    refuse_power: bool
    counters: Counter[str]
    last_filter: dict[str, Any]

    def remove_path(self, path: str) -> None: ...


# ----------------------------------------------------------------------------------------------
# The fake bluetoothd (runs in its own process: `python tests/fakes/bluez.py`)
# ----------------------------------------------------------------------------------------------
def _serve() -> None:
    from dbus_fast import BusType, DBusError, Message, MessageType, Variant
    from dbus_fast.aio import MessageBus
    from dbus_fast.constants import PropertyAccess
    from dbus_fast.service import ServiceInterface, dbus_property, method

    class Adapter(ServiceInterface):
        def __init__(self, server: _AdapterOwner) -> None:
            super().__init__("org.bluez.Adapter1")
            self.server = server
            self.powered: bool = not server.refuse_power
            self.discovering: bool = False
            self.filters: dict[str, Any] = {}

        @method()
        def StartDiscovery(self) -> _DBusNothing:
            if not self.powered:
                raise DBusError("org.bluez.Error.NotReady", "Resource Not Ready")
            if self.discovering:
                raise DBusError("org.bluez.Error.InProgress", "Operation already in progress")
            self.discovering = True
            self.server.counters["start_discovery"] += 1
            self.emit_properties_changed({"Discovering": True})

        @method()
        def StopDiscovery(self) -> _DBusNothing:
            if not self.powered:
                raise DBusError("org.bluez.Error.NotReady", "Resource Not Ready")
            if not self.discovering:
                raise DBusError("org.bluez.Error.Failed", "No discovery started")
            self.discovering = False
            self.emit_properties_changed({"Discovering": False})

        @method()
        def SetDiscoveryFilter(self, filters: DBusDict) -> _DBusNothing:
            self.filters = {k: v.value for k, v in filters.items()}
            self.server.last_filter = self.filters

        @method()
        def GetDiscoveryFilters(self) -> _DBusStrings:
            return [
                "UUIDs",
                "RSSI",
                "Pathloss",
                "Transport",
                "DuplicateData",
                "Discoverable",
                "Pattern",
            ]

        @method()
        def RemoveDevice(self, device: DBusObjectPath) -> _DBusNothing:
            self.server.remove_path(device)

        @dbus_property(access=PropertyAccess.READ)
        def Address(self) -> DBusStr:
            return "00:1A:7D:DA:71:13"

        @dbus_property(access=PropertyAccess.READ)
        def AddressType(self) -> DBusStr:
            return "public"

        @dbus_property(access=PropertyAccess.READ)
        def Name(self) -> DBusStr:
            return "checkpoint-fake"

        @dbus_property(access=PropertyAccess.READ)
        def Roles(self) -> _DBusStrings:
            return ["central", "peripheral"]

        @dbus_property(access=PropertyAccess.READ)
        def Discovering(self) -> DBusBool:
            return self.discovering

        @dbus_property()
        def Powered(self) -> DBusBool:
            return self.powered

        # dbus-fast's property subclasses `property`, whose setter mypy knows by that name only.
        @Powered.setter  # type: ignore[no-redef]
        def Powered(self, value: DBusBool) -> None:
            if value and self.server.refuse_power:
                # What bluetoothd answers when rfkill blocks the radio.
                raise DBusError("org.bluez.Error.Failed", "Blocked through rfkill")
            self.powered = bool(value)
            if not self.powered:
                self.discovering = False
            self.emit_properties_changed({"Powered": self.powered})

    class Device(ServiceInterface):
        def __init__(
            self,
            address: str,
            address_type: str,
            rssi: int,
            mfr: dict[int, bytes],
            svc: dict[str, bytes],
            uuids: list[str],
        ) -> None:
            super().__init__("org.bluez.Device1")
            self.address = address
            self.address_type = address_type
            self.rssi = rssi
            self.mfr = mfr
            self.svc = svc
            self.uuids = uuids

        @dbus_property(access=PropertyAccess.READ)
        def Address(self) -> DBusStr:
            return self.address

        @dbus_property(access=PropertyAccess.READ)
        def AddressType(self) -> DBusStr:
            return self.address_type

        @dbus_property(access=PropertyAccess.READ)
        def Alias(self) -> DBusStr:
            return self.address.replace(":", "-")

        @dbus_property(access=PropertyAccess.READ)
        def Adapter(self) -> DBusObjectPath:
            return ADAPTER_PATH

        @dbus_property(access=PropertyAccess.READ)
        def Paired(self) -> DBusBool:
            return False

        @dbus_property(access=PropertyAccess.READ)
        def Connected(self) -> DBusBool:
            return False

        @dbus_property(access=PropertyAccess.READ)
        def RSSI(self) -> DBusInt16:
            return self.rssi

        @dbus_property(access=PropertyAccess.READ)
        def UUIDs(self) -> _DBusStrings:
            return self.uuids

        @dbus_property(access=PropertyAccess.READ)
        def ManufacturerData(self) -> _DBusCompanyData:
            return {k: Variant("ay", v) for k, v in self.mfr.items()}

        @dbus_property(access=PropertyAccess.READ)
        def ServiceData(self) -> DBusDict:
            return {k: Variant("ay", v) for k, v in self.svc.items()}

    class NamedDevice(Device):
        def __init__(self, name: str, *args: Any) -> None:
            super().__init__(*args)
            self.local_name = name  # not `name`: that is the D-Bus interface name

        @dbus_property(access=PropertyAccess.READ)
        def Name(self) -> DBusStr:
            return self.local_name

    from collections import Counter

    class Server:
        def __init__(self) -> None:
            self.bus: Any = None
            self.refuse_power = False
            self.adapter: Adapter | None = None
            self.devices: dict[str, Device] = {}
            self.counters: Counter[str] = Counter()
            self.last_filter: dict[str, Any] = {}
            self.ticker: asyncio.Task[None] | None = None
            # Advertisement monitors (passive scanning): (client, path) -> or-patterns.
            self.monitors_supported = os.environ.get("FAKE_BLUEZ_NO_MONITORS") != "1"
            self.monitors: dict[tuple[str, str], list[tuple[int, int, bytes]]] = {}

        @staticmethod
        def path_of(address: str) -> str:
            return f"{ADAPTER_PATH}/dev_{address.replace(':', '_').upper()}"

        async def up(self) -> None:
            self.bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
            self.bus.add_message_handler(self.on_monitor_call)
            self.bus.add_message_handler(self.on_name_owner_changed)
            await self.bus.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="AddMatch",
                    signature="s",
                    body=["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"],
                )
            )
            await self.bus.request_name(BLUEZ)
            self.adapter = Adapter(self)
            self.bus.export(ADAPTER_PATH, self.adapter)

        def down(self) -> None:
            self.monitors.clear()
            for path in list(self.devices):
                self.remove_path(path)
            if self.adapter is not None:
                self.bus.unexport(ADAPTER_PATH)
                self.adapter = None

        def remove_path(self, path: str) -> None:
            if self.devices.pop(path, None) is not None:
                self.bus.unexport(path)

        def on_name_owner_changed(self, msg: Any) -> None:
            """Like bluetoothd: a client that leaves the bus (killed, crashed) takes its
            monitors with it, so a new client must register its own to hear anything."""
            if (
                msg.message_type == MessageType.SIGNAL
                and msg.member == "NameOwnerChanged"
                and msg.body
                and not msg.body[2]
            ):
                gone = msg.body[1]
                for key in [k for k in self.monitors if k[0] == gone]:
                    del self.monitors[key]
                    self.counters["monitors_released"] += 1

        def on_monitor_call(self, msg: Any) -> Any:
            """org.bluez.AdvertisementMonitorManager1 (BlueZ 5.56+ with --experimental), handled
            at the message level because the reply needs the caller's bus name."""
            if (
                msg.message_type != MessageType.METHOD_CALL
                or msg.interface != "org.bluez.AdvertisementMonitorManager1"
                or not self.monitors_supported
                or self.adapter is None
            ):
                return None
            key = (msg.sender, msg.body[0] if msg.body else "")
            if msg.member == "RegisterMonitor":
                asyncio.get_running_loop().create_task(self.activate_monitor(*key))
                return Message.new_method_return(msg)
            if msg.member == "UnregisterMonitor":
                self.monitors.pop(key, None)
                return Message.new_method_return(msg)
            return None

        async def activate_monitor(self, client: str, root: str) -> None:
            # Like bluetoothd: read the application's monitors (the client exports them just
            # after registering), then Activate each one.
            for _ in range(50):
                reply = await self.bus.call(
                    Message(
                        destination=client,
                        path=root,
                        interface="org.freedesktop.DBus.ObjectManager",
                        member="GetManagedObjects",
                    )
                )
                ok = reply.message_type == MessageType.METHOD_RETURN
                objects = dict(reply.body[0]) if ok else {}
                # dbus-fast lists only objects below the root; the monitor may sit on it.
                own = await self.bus.call(
                    Message(
                        destination=client,
                        path=root,
                        interface="org.freedesktop.DBus.Properties",
                        member="GetAll",
                        signature="s",
                        body=["org.bluez.AdvertisementMonitor1"],
                    )
                )
                if own.message_type == MessageType.METHOD_RETURN:
                    objects[root] = {"org.bluez.AdvertisementMonitor1": own.body[0]}
                for path, ifaces in objects.items():
                    mon = ifaces.get("org.bluez.AdvertisementMonitor1")
                    if mon is None or mon["Type"].value != "or_patterns":
                        continue
                    patterns = [(int(p[0]), int(p[1]), bytes(p[2])) for p in mon["Patterns"].value]
                    if len(patterns) > BLUEZ_MONITOR_MAX_PATTERNS:
                        # The kernel refuses the monitor (Invalid Parameters) and bluetoothd
                        # releases it: the client hears nothing, and gets no error either.
                        await self.bus.call(
                            Message(
                                destination=client,
                                path=path,
                                interface="org.bluez.AdvertisementMonitor1",
                                member="Release",
                            )
                        )
                        self.counters["monitors_refused"] += 1
                        return
                    self.monitors[(client, root)] = patterns
                    await self.bus.call(
                        Message(
                            destination=client,
                            path=path,
                            interface="org.bluez.AdvertisementMonitor1",
                            member="Activate",
                        )
                    )
                    self.counters["monitors_activated"] += 1
                    return
                await asyncio.sleep(0.02)

        def matches_monitor(
            self, m: dict[int, bytes], s: dict[str, bytes], uuids: list[str]
        ) -> bool:
            """BlueZ's or-pattern match: an AD structure of the pattern's type whose data holds
            the pattern's bytes at its start offset."""

            def uuid16(uuid: str) -> bytes | None:
                if uuid.endswith("-0000-1000-8000-00805f9b34fb") and uuid.startswith("0000"):
                    return int(uuid[4:8], 16).to_bytes(2, "little")
                return None

            ads = [(0xFF, k.to_bytes(2, "little") + v) for k, v in m.items()]
            for uuid, data in s.items():
                le = uuid16(uuid)
                if le is not None:
                    ads.append((0x16, le + data))
            # The advertised 16-bit services go in one "complete list" structure (AD type 3).
            listed = b"".join(le for le in map(uuid16, uuids) if le is not None)
            if listed:
                ads.append((0x03, listed))
            for patterns in self.monitors.values():
                for start, ad_type, content in patterns:
                    for t, data in ads:
                        if t == ad_type and data[start : start + len(content)] == content:
                            return True
            return False

        def advert(
            self,
            address: str,
            address_type: str = "random",
            rssi: int = -60,
            mfr: dict[str, str] | None = None,
            svc: dict[str, str] | None = None,
            uuids: list[str] | None = None,
            name: str | None = None,
        ) -> bool:
            """Report one advertisement; False when the adapter is not scanning."""
            m = {int(k): bytes.fromhex(v) for k, v in (mfr or {}).items()}
            s = {k: bytes.fromhex(v) for k, v in (svc or {}).items()}
            scanning = (
                self.adapter is not None
                and self.adapter.powered
                and (
                    self.adapter.discovering
                    or (self.monitors and self.matches_monitor(m, s, list(uuids or [])))
                )
            )
            if not scanning:
                self.counters["suppressed"] += 1
                return False
            path = self.path_of(address)
            dev = self.devices.get(path)
            if dev is None:
                args = (address, address_type, rssi, m, s, list(uuids or []))
                dev = NamedDevice(name, *args) if name else Device(*args)
                self.devices[path] = dev
                self.bus.export(path, dev)  # InterfacesAdded carries the first advert
            else:
                # Like bluetoothd (adapter.c, device.c): a known device's advert changes only
                # what differs, RSSI only by RSSI_DELTA_DB or more; a discovery with a filter
                # takes every RSSI change, and with DuplicateData every advert's data.
                a = self.adapter
                filtered = a is not None and a.discovering and bool(a.filters)
                every = filtered and a is not None and bool(a.filters.get("DuplicateData"))
                changed: dict[str, Any] = {}
                if abs(rssi - dev.rssi) >= (1 if filtered else RSSI_DELTA_DB):
                    dev.rssi = changed["RSSI"] = rssi
                if m and (every or m != dev.mfr):
                    dev.mfr = m
                    changed["ManufacturerData"] = {k: Variant("ay", v) for k, v in m.items()}
                if s and (every or s != dev.svc):
                    dev.svc = s
                    changed["ServiceData"] = {k: Variant("ay", v) for k, v in s.items()}
                if changed:
                    dev.emit_properties_changed(changed)
                else:
                    self.counters["unchanged"] += 1
            self.counters["emitted"] += 1
            return True

        async def restart(self, delay: float, monitors: bool | None = None) -> dict[str, Any]:
            self.down()
            await self.bus.release_name(BLUEZ)
            self.counters["restarts"] += 1
            await asyncio.sleep(delay)
            if monitors is not None:  # comes back with (or without) --experimental
                self.monitors_supported = monitors
            await self.bus.request_name(BLUEZ)
            self.adapter = Adapter(self)
            self.bus.export(ADAPTER_PATH, self.adapter)
            return {"back_at": time.time()}

        async def bus_writable(self) -> None:
            """Wait until the bus socket takes at least a byte. dbus-fast (5.x) takes EAGAIN
            from a full socket for a dead connection and drops the bus, where libdbus (the real
            bluetoothd's) waits; on a loaded machine the dbus-daemon falls behind a flood and
            the fake bluetoothd vanished mid-test. A partial write is fine: dbus-fast finishes
            it when the socket drains."""
            sock = self.bus._sock
            while not select.select([], [sock], [], 0)[1]:
                await asyncio.sleep(0.001)

        async def flood(self, rate: float, seconds: float, devices: int) -> dict[str, Any]:
            """Emit ``rate`` adverts/s for ``seconds``, each numbered in manufacturer data."""
            sent = 0
            suppressed = 0
            start = time.monotonic()
            total = int(rate * seconds)
            addresses = [f"4A:00:00:00:{i // 256:02X}:{i % 256:02X}" for i in range(devices)]
            while sent + suppressed < total:
                due = min(total, int((time.monotonic() - start) * rate) + 1)
                while sent + suppressed < due:
                    await self.bus_writable()
                    n = sent + suppressed
                    ok = self.advert(
                        addresses[n % devices],
                        "random",
                        -40 - n % 50,
                        {str(FLOOD_COMPANY): n.to_bytes(4, "big").hex()},
                    )
                    if ok:
                        sent += 1
                    else:
                        suppressed += 1
                await asyncio.sleep(0.002)
            elapsed = time.monotonic() - start
            return {
                "sent": sent,
                "suppressed": suppressed,
                "elapsed_s": elapsed,
                "rate": sent / elapsed if elapsed else 0.0,
            }

        async def tick(self, address: str, period: float, mfr: dict[str, str]) -> None:
            """Keep one device advertising, as a phone in range does."""
            n = 0
            while True:
                n += 1
                self.advert(address, "random", -55 - n % 5, mfr)
                await asyncio.sleep(period)

        async def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
            op = cmd.pop("op")
            if op == "advert":
                return {"ok": self.advert(**cmd)}
            if op == "rotate":
                old = self.path_of(cmd["old"])
                self.remove_path(old)
                return {
                    "ok": self.advert(
                        cmd["new"], "random", cmd.get("rssi", -60), cmd.get("mfr"), cmd.get("svc")
                    )
                }
            if op == "refuse_power":
                self.refuse_power = bool(cmd["refuse"])
                if self.adapter is not None and self.refuse_power:
                    self.adapter.powered = False
                    self.adapter.discovering = False
                    self.adapter.emit_properties_changed({"Powered": False, "Discovering": False})
                return {"ok": True}
            if op == "stale_discovery":
                # A discovery left running by another client (or a crashed earlier run).
                if self.adapter is not None:
                    self.adapter.discovering = True
                return {"ok": True}
            if op == "restart":
                return await self.restart(float(cmd.get("delay", 1.0)), cmd.get("monitors"))
            if op == "flood":
                return await self.flood(
                    float(cmd["rate"]), float(cmd["seconds"]), int(cmd.get("devices", 200))
                )
            if op == "tick":
                if self.ticker is not None:
                    self.ticker.cancel()
                self.ticker = asyncio.create_task(
                    self.tick(cmd["address"], float(cmd.get("period", 0.1)), cmd["mfr"])
                )
                return {"ok": True}
            if op == "untick":
                if self.ticker is not None:
                    self.ticker.cancel()
                    self.ticker = None
                return {"ok": True}
            if op == "state":
                a = self.adapter
                return {
                    "powered": a.powered if a else None,
                    "discovering": a.discovering if a else None,
                    "filter": {
                        k: v for k, v in self.last_filter.items() if isinstance(v, bool | int | str)
                    },
                    "devices": len(self.devices),
                    "monitors": len(self.monitors),
                    "counters": dict(self.counters),
                }
            return {"error": f"unknown op {op}"}

    async def main() -> None:
        server = Server()
        server.refuse_power = os.environ.get("FAKE_BLUEZ_REFUSE_POWER") == "1"
        await server.up()
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        sys.stdout.write(json.dumps({"ready": True}) + "\n")
        sys.stdout.flush()
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                reply = await server.handle(json.loads(line))
            except Exception as exc:  # report any failure to the test
                reply = {"error": repr(exc)}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()

    asyncio.run(main())


# ----------------------------------------------------------------------------------------------
# The test side
# ----------------------------------------------------------------------------------------------
class FakeBluez:
    """The private bus and the fake bluetoothd on it; each method sends one command to the
    fake and waits for its reply."""

    def __init__(self, tmp: Path, refuse_power: bool = False, monitors: bool = True) -> None:
        self.tmp = tmp
        self.refuse_power_at_start = refuse_power
        self.monitors = monitors
        self.dbus: subprocess.Popen[str] | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.bus_address = ""

    # -- processes --------------------------------------------------------------------------
    def start(self) -> None:
        self.dbus, self.bus_address = _start_dbus(self.tmp)
        self.proc = _start_fake(self.bus_address, self.refuse_power_at_start, self.monitors)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.dbus is not None:
            self.dbus.terminate()
            self.dbus.wait(timeout=5)
            self.dbus = None

    def restart_system_bus(self, delay: float = 1.0) -> None:
        """The system D-Bus daemon dies (taking bluetoothd with it) and returns after
        ``delay`` on the same socket, with a fresh bluetoothd."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.dbus is not None:
            self.dbus.kill()
            self.dbus.wait()
            self.dbus = None
        (self.tmp / "system_bus_socket").unlink(missing_ok=True)
        time.sleep(delay)
        self.start()

    # -- commands ---------------------------------------------------------------------------
    def _call(self, op: str, **kw: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("fake bluez exited")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"fake bluez: {reply['error']}")
        return reply

    def advert(
        self,
        address: str,
        *,
        address_type: str = "random",
        rssi: int = -60,
        mfr: dict[int, bytes] | None = None,
        svc: dict[str, bytes] | None = None,
        uuids: list[str] | None = None,
        name: str | None = None,
    ) -> bool:
        return bool(
            self._call(
                "advert",
                address=address,
                address_type=address_type,
                rssi=rssi,
                mfr={str(k): v.hex() for k, v in (mfr or {}).items()},
                svc={k: v.hex() for k, v in (svc or {}).items()},
                uuids=uuids or [],
                name=name,
            )["ok"]
        )

    def rotate(
        self, old: str, new: str, *, rssi: int = -60, mfr: dict[int, bytes] | None = None
    ) -> bool:
        return bool(
            self._call(
                "rotate",
                old=old,
                new=new,
                rssi=rssi,
                mfr={str(k): v.hex() for k, v in (mfr or {}).items()},
            )["ok"]
        )

    def refuse_power(self, refuse: bool = True) -> None:
        self._call("refuse_power", refuse=refuse)

    def stale_discovery(self) -> None:
        """Mark a discovery as already running, as a crashed earlier scanner leaves it."""
        self._call("stale_discovery")

    def restart_bluetoothd(self, delay: float = 1.0, monitors: bool | None = None) -> float:
        """Drop every object and the bus name, come back after ``delay``; returns wall time
        at which org.bluez was owned again. ``monitors`` True/False: it comes back with/without
        advertisement monitors (started with/without --experimental)."""
        if monitors is not None:
            self.monitors = monitors  # a later restart_system_bus keeps this bluetoothd
        return float(self._call("restart", delay=delay, monitors=monitors)["back_at"])

    def flood(self, rate: float, seconds: float, devices: int = 200) -> dict[str, Any]:
        return self._call("flood", rate=rate, seconds=seconds, devices=devices)

    def tick(self, address: str, mfr: dict[int, bytes], period: float = 0.1) -> None:
        self._call(
            "tick", address=address, period=period, mfr={str(k): v.hex() for k, v in mfr.items()}
        )

    def untick(self) -> None:
        self._call("untick")

    def state(self) -> dict[str, Any]:
        return self._call("state")


def _start_dbus(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("dbus-daemon is not installed (apt install dbus)")
    socket = tmp / "system_bus_socket"
    config = tmp / "system.conf"
    config.write_text(_DBUS_CONFIG.format(socket=socket), encoding="utf-8")
    # Its complaints go to a file: a pipe nobody reads would stop the bus at 64 KiB of them.
    log = tmp / "dbus-daemon.log"
    with log.open("a", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [daemon, f"--config-file={config}", "--nofork", "--print-address"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    if not address:
        proc.kill()
        proc.wait()
        pytest.fail(f"dbus-daemon did not start: {log.read_text(encoding='utf-8')[-2000:]}")
    return proc, address


def _start_fake(address: str, refuse_power: bool, monitors: bool = True) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        DBUS_SYSTEM_BUS_ADDRESS=address,
        FAKE_BLUEZ_REFUSE_POWER="1" if refuse_power else "0",
        FAKE_BLUEZ_NO_MONITORS="0" if monitors else "1",
    )
    proc = subprocess.Popen(
        [sys.executable, __file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line or not json.loads(line).get("ready"):
        proc.kill()
        pytest.fail("fake bluez did not start")
    return proc


@contextlib.contextmanager
def running_fake_bluez(
    tmp: Path, *, refuse_power: bool = False, monitors: bool = True
) -> Iterator[FakeBluez]:
    """A private system bus with a fake bluetoothd on it; DBUS_SYSTEM_BUS_ADDRESS points at it
    for the duration. ``monitors=False`` is a BlueZ without advertisement monitors (< 5.56)."""
    fake = FakeBluez(tmp, refuse_power, monitors)
    old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    try:
        fake.start()
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = fake.bus_address
        yield fake
    finally:
        fake.stop()
        if old is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old


@pytest.fixture
def fake_bluez(tmp_path: Path) -> Iterator[FakeBluez]:
    """A fake org.bluez with one powered adapter (hci0) on a private system bus."""
    with running_fake_bluez(tmp_path) as fake:
        yield fake


@pytest.fixture
def fake_bluez_unpowerable(tmp_path: Path) -> Iterator[FakeBluez]:
    """A fake org.bluez whose adapter is off and refuses to power on (rfkill)."""
    with running_fake_bluez(tmp_path, refuse_power=True) as fake:
        yield fake


@pytest.fixture
def fake_bluez_without_monitors(tmp_path: Path) -> Iterator[FakeBluez]:
    """A fake org.bluez without advertisement monitors: passive scanning is impossible."""
    with running_fake_bluez(tmp_path, monitors=False) as fake:
        yield fake


if __name__ == "__main__":
    _serve()
