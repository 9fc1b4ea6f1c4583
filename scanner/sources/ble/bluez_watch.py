"""A small D-Bus client of our own beside bleak: who owns ``org.bluez``, the adapter's
properties, powering it on, and a signal when the ground moves (bluetoothd restarted or gone,
adapter powered off, the bus itself lost).

bleak's BlueZ manager follows objects but not the bus name: after bluetoothd restarts it keeps
its callbacks while the new bluetoothd is not scanning. This watcher tells the start ladder to
start over. dbus-fast is imported lazily, so a replay-only machine needs no D-Bus library.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from scanner.sources.ble.constants import (
    ADAPTER_INTERFACE,
    BLUEZ_SERVICE,
    DBUS_CALL_TIMEOUT_S,
    DEVICE_INTERFACE,
    OBJECT_MANAGER_INTERFACE,
    PROPERTIES_INTERFACE,
)

_LOGGER = logging.getLogger(__name__)

_DBUS = "org.freedesktop.DBus"


class BluezCallError(Exception):
    """A D-Bus call to BlueZ returned an error; ``name`` is the D-Bus error name."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}")
        self.name = name
        self.text = text


class BluezWatch:
    """Watches org.bluez and one adapter on the system bus."""

    def __init__(self) -> None:
        self._bus: Any = None
        self.adapter_path: str | None = None
        self.owner: str | None = None
        self.changed = asyncio.Event()
        self.reason = ""
        self._owner_event = asyncio.Event()
        self._disconnect_task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Connect to the system bus and subscribe to the signals we act on."""
        from dbus_fast import BusType
        from dbus_fast.aio import MessageBus

        bus = MessageBus(bus_type=BusType.SYSTEM)
        try:
            await asyncio.wait_for(bus.connect(), DBUS_CALL_TIMEOUT_S)
        except BaseException:
            bus.disconnect()
            raise
        self._bus = bus
        bus.add_message_handler(self._on_message)
        await self._call(
            _DBUS,
            "/org/freedesktop/DBus",
            _DBUS,
            "AddMatch",
            "s",
            [
                f"type='signal',sender='{_DBUS}',interface='{_DBUS}',member='NameOwnerChanged',"
                f"arg0='{BLUEZ_SERVICE}'"
            ],
        )
        await self._call(
            _DBUS,
            "/org/freedesktop/DBus",
            _DBUS,
            "AddMatch",
            "s",
            [
                f"type='signal',interface='{PROPERTIES_INTERFACE}',member='PropertiesChanged',"
                f"arg0='{ADAPTER_INTERFACE}'"
            ],
        )
        self._disconnect_task = asyncio.create_task(self._watch_disconnect(bus))
        self.owner = await self.current_owner()
        if self.owner:
            self._owner_event.set()

    async def _watch_disconnect(self, bus: Any) -> None:
        try:
            await bus.wait_for_disconnect()
        except Exception as exc:  # any end of the bus is the same event
            _LOGGER.debug("system bus ended: %s", exc)
        self._signal("the system D-Bus connection was lost")

    def close(self) -> None:
        """Drop the connection (idempotent)."""
        if self._disconnect_task is not None:
            self._disconnect_task.cancel()
            self._disconnect_task = None
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None

    def _signal(self, reason: str) -> None:
        if not self.changed.is_set():
            self.reason = reason
            self.changed.set()

    def _on_message(self, msg: Any) -> None:
        from dbus_fast import MessageType

        if msg.message_type != MessageType.SIGNAL:
            return
        if msg.member == "NameOwnerChanged" and msg.body and msg.body[0] == BLUEZ_SERVICE:
            _name, old, new = msg.body
            self.owner = new or None
            if new:
                self._owner_event.set()
            else:
                self._owner_event.clear()
            if old:
                self._signal("bluetoothd restarted" if new else "bluetoothd stopped")
        elif (
            msg.member == "PropertiesChanged"
            and msg.path == self.adapter_path
            and msg.body
            and msg.body[0] == ADAPTER_INTERFACE
        ):
            powered = msg.body[1].get("Powered")
            if powered is not None and not powered.value:
                self._signal(f"adapter {self.adapter_path} was powered off")

    async def _call(
        self,
        dest: str,
        path: str,
        iface: str,
        member: str,
        sig: str = "",
        body: list[Any] | None = None,
    ) -> list[Any]:
        from dbus_fast import Message, MessageType

        if self._bus is None:
            raise BluezCallError("org.freedesktop.DBus.Error.Disconnected", "not connected")
        reply = await asyncio.wait_for(
            self._bus.call(
                Message(
                    destination=dest,
                    path=path,
                    interface=iface,
                    member=member,
                    signature=sig,
                    body=body or [],
                )
            ),
            DBUS_CALL_TIMEOUT_S,
        )
        if reply is None:
            raise BluezCallError("org.freedesktop.DBus.Error.NoReply", "no reply")
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body else ""
            raise BluezCallError(reply.error_name or "unknown", str(text))
        return list(reply.body)

    async def current_owner(self) -> str | None:
        """The unique name owning org.bluez, or None when bluetoothd is not running."""
        try:
            body = await self._call(
                _DBUS, "/org/freedesktop/DBus", _DBUS, "GetNameOwner", "s", [BLUEZ_SERVICE]
            )
        except BluezCallError as exc:
            if exc.name == "org.freedesktop.DBus.Error.NameHasNoOwner":
                return None
            raise
        return str(body[0])

    async def wait_owner(self, timeout: float) -> bool:
        """Wait for org.bluez to have an owner; False after ``timeout``."""
        if self.owner:
            return True
        try:
            await asyncio.wait_for(self._owner_event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def find_adapter(self, name: str | None) -> str:
        """The object path of adapter ``name`` (or the first adapter); raises when absent."""
        if name is not None:
            self.adapter_path = f"/org/bluez/{name}"
            await self.adapter_properties()
            return self.adapter_path
        body = await self._call(BLUEZ_SERVICE, "/", OBJECT_MANAGER_INTERFACE, "GetManagedObjects")
        paths = sorted(p for p, ifaces in body[0].items() if ADAPTER_INTERFACE in ifaces)
        if not paths:
            raise BluezCallError(
                "org.freedesktop.DBus.Error.UnknownObject", "No Bluetooth adapters found"
            )
        self.adapter_path = paths[0]
        return self.adapter_path

    async def adapter_properties(self) -> dict[str, Any]:
        """The adapter's Adapter1 properties, unwrapped."""
        if self.adapter_path is None:
            raise BluezCallError("org.freedesktop.DBus.Error.UnknownObject", "no adapter")
        body = await self._call(
            BLUEZ_SERVICE,
            self.adapter_path,
            PROPERTIES_INTERFACE,
            "GetAll",
            "s",
            [ADAPTER_INTERFACE],
        )
        return {k: v.value for k, v in body[0].items()}

    async def power_on(self) -> None:
        """Ask bluetoothd to power the adapter on (raises its refusal)."""
        from dbus_fast import Variant

        if self.adapter_path is None:
            raise BluezCallError("org.freedesktop.DBus.Error.UnknownObject", "no adapter")
        await self._call(
            BLUEZ_SERVICE,
            self.adapter_path,
            PROPERTIES_INTERFACE,
            "Set",
            "ssv",
            [ADAPTER_INTERFACE, "Powered", Variant("b", True)],
        )

    async def forget_cached_devices(self) -> int:
        """Drop BlueZ's cached objects of the adapter's passing devices; how many went.

        Passing: not paired, bonded, trusted or connected, the devices BlueZ itself drops after
        its TemporaryTimeout of silence. Nothing is transmitted; the next advert of a device
        still in range creates its object again, with that advert's data.
        """
        if self.adapter_path is None:
            return 0
        body = await self._call(BLUEZ_SERVICE, "/", OBJECT_MANAGER_INTERFACE, "GetManagedObjects")
        gone = 0
        for path, ifaces in body[0].items():
            props = ifaces.get(DEVICE_INTERFACE)
            if props is None or not _is_passing(props, self.adapter_path):
                continue
            try:
                await self._call(
                    BLUEZ_SERVICE, self.adapter_path, ADAPTER_INTERFACE, "RemoveDevice", "o", [path]
                )
            except BluezCallError as exc:
                # Already gone (its own timeout, or a second caller): nothing left to drop.
                _LOGGER.debug("RemoveDevice %s: %s", path, exc)
                continue
            gone += 1
        return gone

    async def stop_discovery(self) -> None:
        """Stop a discovery left running (the InProgress rung); errors are ignored."""
        if self.adapter_path is None:
            return
        try:
            await self._call(BLUEZ_SERVICE, self.adapter_path, ADAPTER_INTERFACE, "StopDiscovery")
        except (BluezCallError, TimeoutError) as exc:
            _LOGGER.debug("StopDiscovery on %s: %s", self.adapter_path, exc)


def _is_passing(props: dict[str, Any], adapter_path: str) -> bool:
    """A Device1 of this adapter that BlueZ keeps only because it was heard lately."""
    if _value(props.get("Adapter")) != adapter_path:
        return False
    return not any(bool(_value(props.get(k))) for k in ("Paired", "Bonded", "Trusted", "Connected"))


def _value(prop: Any) -> Any:
    """A property as GetManagedObjects gives it (a Variant), unwrapped; None when absent."""
    return getattr(prop, "value", prop)
