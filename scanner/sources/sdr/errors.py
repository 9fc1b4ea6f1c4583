"""Capture errors of the SDR front ends, each carrying its failure class."""

from __future__ import annotations

from scanner.errors import HardwareError
from scanner.sources.sdr.constants import FailureClass


class CaptureError(HardwareError):
    """A front end failed; ``failure`` says how to report and retry it."""

    def __init__(self, failure: FailureClass, detail: str) -> None:
        super().__init__(f"{detail}: {failure.advice}")
        self.failure = failure
        self.detail = detail
