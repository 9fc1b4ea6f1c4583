"""The allowlist as the core applies it: authorised devices never raise an alert.

Entries come from two places: the ``[core]`` config (``allowlist = [{match, value, label}]``)
and the store, which the API edits. The store's entries are re-read whenever its
``allowlist_version`` setting changes. A device matches by any of its identifiers: a Wi-Fi MAC,
a Wi-Fi IE fingerprint, or a BLE identity (an address or the BLE tracker's device id).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from scanner.core.devices import Device
from scanner.store.db import Store

_LOGGER = logging.getLogger(__name__)


def _norm(value: str) -> str:
    return value.strip().lower()


class Allowlist:
    """Entries by match kind; answers whether a device or identifier is authorised."""

    def __init__(self, config_entries: Iterable[Mapping[str, str]] = ()) -> None:
        self._config = [dict(e) for e in config_entries]
        self._store_entries: list[dict[str, str]] = []
        self._by_kind: dict[str, dict[str, str]] = {}
        self.version: int | None = None
        self._rebuild()

    def _rebuild(self) -> None:
        by_kind: dict[str, dict[str, str]] = {"mac": {}, "fingerprint": {}, "ble_identity": {}}
        for entry in [*self._config, *self._store_entries]:
            kind = entry.get("match", "")
            if kind in by_kind:
                by_kind[kind][_norm(entry.get("value", ""))] = entry.get("label", "") or kind
        self._by_kind = by_kind

    def refresh(self, store: Store | None) -> bool:
        """Re-read the store's entries when its version changed; True when they did."""
        if store is None:
            return False
        from scanner.store.allowlist import allowlist_version, list_entries

        version = allowlist_version(store)
        if version == self.version:
            return False
        self.version = version
        self._store_entries = [
            {"match": e.match, "value": e.value, "label": e.label} for e in list_entries(store)
        ]
        self._rebuild()
        _LOGGER.info("allowlist version %d: %d entries", version, len(self))
        return True

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_kind.values())

    def match(self, kind: str, value: str | None) -> str | None:
        """The label of the entry matching this identifier, or None."""
        if not value:
            return None
        return self._by_kind.get(kind, {}).get(_norm(value))

    def match_device(self, device: Device) -> str | None:
        """The label of the first entry matching any identifier of the device, or None."""
        for mac in device.macs:
            label = self.match("mac", mac)
            if label is not None:
                return label
        for fp in device.fingerprints:
            label = self.match("fingerprint", fp)
            if label is not None:
                return label
        for ident in (*device.ble, device.id):
            label = self.match("ble_identity", ident)
            if label is not None:
                return label
        return None
