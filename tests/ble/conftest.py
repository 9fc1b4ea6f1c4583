"""BLE tests use the fake BlueZ fixtures from tests/fakes/bluez.py."""

from __future__ import annotations

from tests.fakes.bluez import fake_bluez, fake_bluez_unpowerable, fake_bluez_without_monitors

__all__ = ["fake_bluez", "fake_bluez_unpowerable", "fake_bluez_without_monitors"]
