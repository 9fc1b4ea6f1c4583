"""Errors of the Wi-Fi source: monitor-mode setup, channel hopping, the channel plan.

A recording that cannot be read raises ``scanner.errors.RecordingError``, as for every radio.
"""

from __future__ import annotations

from scanner.errors import HardwareError
from scanner.sources.wifi.constants import IwErrorClass


class MonitorError(HardwareError):
    """An ``iw``/``ip`` step failed; ``cls`` says what kind of failure it was."""

    def __init__(self, cls: IwErrorClass, message: str) -> None:
        super().__init__(message)
        self.cls = cls


class NoUsableChannelError(MonitorError):
    """Every channel of the plan failed to tune."""


class ChannelPlanError(ValueError):
    """A channel plan entry that cannot be used; the message names it."""
