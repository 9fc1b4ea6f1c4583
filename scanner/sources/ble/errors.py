"""Capture errors of the BLE source, each carrying its failure class (``BleErrorClass``)."""

from __future__ import annotations

from scanner.errors import HardwareError
from scanner.sources.ble.constants import BleErrorClass


class CaptureError(HardwareError):
    """A rung of the start ladder failed; ``failure`` picks the backoff and the message."""

    def __init__(self, failure: BleErrorClass, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
