"""The allowlist as the core applies it: authorised devices never raise an alert.

Entries come from two places: the ``[core]`` config (``allowlist = [{match, value, label}]``)
and the ones a supervisor edits through the API, which reach the core as an
``AllowlistChanged`` input whenever they change. A device matches by any of its identifiers:
a Wi-Fi MAC, a Wi-Fi IE fingerprint, or a BLE identity (an address or the BLE tracker's id).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from scanner.core.devices import Device

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

    def set_stored(self, entries: Iterable[Mapping[str, str]]) -> None:
        """Replace the supervisor's entries (the config's stay)."""
        self._store_entries = [
            {"match": e.get("match", ""), "value": e.get("value", ""), "label": e.get("label", "")}
            for e in entries
        ]
        self._rebuild()
        _LOGGER.info("allowlist: %d entries", len(self))

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
