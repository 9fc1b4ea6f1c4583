"""Direct USB capture through ``pyrtlsdr`` (librtlsdr from ``pyrtlsdrlib``).

Imported only when the USB transport is chosen, so a machine without the library still runs
replay, rtl_tcp capture and the tests. Every librtlsdr error is classified by the table in
``constants`` into a ``CaptureError`` whose message tells a person what to do.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner.sources.sdr.constants import NO_LIBRARY, classify_libusb
from scanner.sources.sdr.errors import CaptureError

_LOGGER = logging.getLogger(__name__)


def _load_rtlsdr() -> Any:
    """Import pyrtlsdr, preferring the librtlsdr that pyrtlsdrlib ships."""
    try:
        import pyrtlsdrlib  # noqa: F401 - puts its librtlsdr where pyrtlsdr looks
    except ImportError:
        _LOGGER.debug("pyrtlsdrlib not installed; trying the system librtlsdr")
    try:
        import rtlsdr
    except (ImportError, OSError, AttributeError) as exc:
        raise CaptureError(NO_LIBRARY, f"cannot load pyrtlsdr/librtlsdr ({exc})") from exc
    return rtlsdr


def _wrap(exc: BaseException, what: str) -> CaptureError:
    errno = getattr(exc, "errno", None)
    failure = classify_libusb(errno if isinstance(errno, int) else None, str(exc))
    return CaptureError(failure, f"RTL-SDR {what}: {exc}")


class UsbTuner:
    """One RTL-SDR on USB, with the same methods as ``RtlTcpClient``."""

    # Synchronous reads start a fresh bulk transfer; only the PLL settling time matters.
    retune_latency_s = 0.0

    def __init__(self, device_index: int = 0, serial: str | None = None) -> None:
        self.device_index = device_index
        self.serial = serial
        self._sdr: Any = None
        self.gains_db: tuple[float, ...] = ()

    @property
    def where(self) -> str:
        return f"RTL-SDR #{self.device_index}" if self.serial is None else f"RTL-SDR {self.serial}"

    def open(self) -> None:
        rtlsdr = _load_rtlsdr()
        self.close()
        try:
            if self.serial is not None:
                self._sdr = rtlsdr.RtlSdr(serial_number=self.serial)
            else:
                self._sdr = rtlsdr.RtlSdr(device_index=self.device_index)
            self.gains_db = tuple(float(g) for g in self._sdr.get_gains())
        except (OSError, ValueError) as exc:
            self._sdr = None
            raise _wrap(exc, "open") from exc

    def close(self) -> None:
        if self._sdr is not None:
            try:
                self._sdr.close()
            except (OSError, ValueError):
                _LOGGER.debug("%s: close failed", self.where)
            self._sdr = None

    def _call(self, what: str, fn: str, *args: Any) -> Any:
        if self._sdr is None:
            raise CaptureError(classify_libusb(-4, ""), f"{self.where}: not open")
        try:
            return getattr(self._sdr, fn)(*args)
        except (OSError, ValueError) as exc:
            raise _wrap(exc, what) from exc

    def set_center_freq(self, hz: float) -> None:
        self._call(f"tune to {hz / 1e6:.3f} MHz", "set_center_freq", round(hz))

    def set_sample_rate(self, rate: float) -> None:
        self._call(f"set rate {rate:.0f}", "set_sample_rate", round(rate))

    def set_gain(self, gain_db: float | None) -> None:
        self._call("set gain", "set_gain", "auto" if gain_db is None else gain_db)

    def set_freq_correction(self, ppm: int) -> None:
        if ppm:
            self._call("set ppm", "set_freq_correction", ppm)

    def discard_buffered(self) -> int:
        """Nothing to throw away: each synchronous read starts a fresh bulk transfer."""
        return 0

    def read(self, n_bytes: int) -> npt.NDArray[np.uint8]:
        data = self._call("read", "read_bytes", n_bytes)
        return np.frombuffer(bytes(data), dtype=np.uint8)
