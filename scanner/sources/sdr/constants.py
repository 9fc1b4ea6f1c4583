"""Failure classes of SDR capture: what each error means, what to tell the guard, how to retry.

librtlsdr reports libusb error codes (pyrtlsdr's ``LibUSBError.errno``); the rtl_tcp client
raises its own errors. Both are mapped here, in one table, to a class with a user-actionable
message and a backoff schedule. The capture loop only ever looks errors up here. The sample
rates the detector can work with are bounded here too, for the reader and the detector alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.observations import SensorState
from scanner.sources.backoff import Schedule

# Sample rates the burst detector accepts, in samples per second. The RTL2832U itself runs at
# 225 kS/s .. 3.2 MS/s; recordings from other receivers are welcome within these bounds. Below
# 1 kS/s one FFT frame (128 samples) lasts over a tenth of a second, longer than any uplink burst,
# and the floor's per-block rise (a power of ten of the frame time) soon overflows a float; above
# 100 MS/s no receiver this project reads exists, and an infinite rate makes the frame time zero.
# A recording outside the range is refused as a whole (RecordingError), live options by config.
MIN_SAMPLE_RATE_HZ = 1e3
MAX_SAMPLE_RATE_HZ = 100e6


@dataclass(frozen=True, slots=True)
class FailureClass:
    """How to report and retry one kind of failure."""

    name: str
    state: SensorState  # while it lasts: degraded or fault
    advice: str  # what a person should do, appended to the message
    retry: Schedule  # first retry after retry.first_s, doubling up to retry.max_s


GONE = FailureClass(
    "dongle_gone", SensorState.FAULT,
    "unplug and replug the dongle (check the USB cable and the Pi's power supply)",
    Schedule(1.0, 30.0),
)  # fmt: skip
ACCESS = FailureClass(
    "no_permission", SensorState.FAULT,
    "install the udev rule from firmware/ and add the service user to plugdev",
    Schedule(30.0, 120.0),
)  # fmt: skip
BUSY = FailureClass(
    "busy", SensorState.FAULT,
    "another program or the DVB driver holds the dongle: blacklist dvb_usb_rtl28xxu "
    "(firmware/) or stop the other program", Schedule(10.0, 60.0),
)  # fmt: skip
STALL = FailureClass(
    "stalled", SensorState.DEGRADED,
    "the IQ stream stopped; reconnecting (if it repeats, replug the dongle or restart rtl_tcp)",
    Schedule(0.5, 10.0),
)  # fmt: skip
REFUSED = FailureClass(
    "refused", SensorState.FAULT,
    "is rtl_tcp running on the mast and reachable (address, port, firewall)?", Schedule(1.0, 30.0),
)  # fmt: skip
DROPPED = FailureClass(
    "dropped", SensorState.DEGRADED,
    "rtl_tcp closed the connection (its dongle may be unplugged or the server restarted); "
    "reconnecting", Schedule(0.5, 30.0),
)  # fmt: skip
PROTOCOL = FailureClass(
    "protocol", SensorState.FAULT,
    "the peer is not an rtl_tcp server: check the configured host and port", Schedule(30.0, 120.0),
)  # fmt: skip
NO_LIBRARY = FailureClass(
    "no_library", SensorState.FAULT,
    "librtlsdr is not loadable: install pyrtlsdrlib (pip) or use transport = \"rtl_tcp\"",
    Schedule(60.0, 300.0),
)  # fmt: skip
TUNE = FailureClass(
    "tune_failed", SensorState.DEGRADED,
    "the tuner refused a frequency or setting; that channel is skipped", Schedule(1.0, 30.0),
)  # fmt: skip
OTHER = FailureClass(
    "other", SensorState.FAULT, "see the log; replug the dongle if it persists",
    Schedule(2.0, 60.0),
)  # fmt: skip
# Every class the capture loop can meet, with its retry schedule (the loop's Backoff table).
RETRY_SCHEDULES: dict[FailureClass, Schedule | None] = {
    f: f.retry
    for f in (GONE, ACCESS, BUSY, STALL, REFUSED, DROPPED, PROTOCOL, NO_LIBRARY, TUNE, OTHER)
}

# libusb error code (as librtlsdr returns it) -> failure class
LIBUSB_ERRORS: dict[int, FailureClass] = {
    -1: GONE,  # LIBUSB_ERROR_IO: a read on a device that has just been pulled
    -2: TUNE,  # LIBUSB_ERROR_INVALID_PARAM
    -3: ACCESS,  # LIBUSB_ERROR_ACCESS
    -4: GONE,  # LIBUSB_ERROR_NO_DEVICE
    -5: GONE,  # LIBUSB_ERROR_NOT_FOUND: nothing at that index (not plugged in)
    -6: BUSY,  # LIBUSB_ERROR_BUSY: kernel DVB driver or another process has it
    -7: STALL,  # LIBUSB_ERROR_TIMEOUT
    -8: STALL,  # LIBUSB_ERROR_OVERFLOW
    -9: GONE,  # LIBUSB_ERROR_PIPE
    -10: STALL,  # LIBUSB_ERROR_INTERRUPTED
    -11: OTHER,  # LIBUSB_ERROR_NO_MEM
    -12: OTHER,  # LIBUSB_ERROR_NOT_SUPPORTED
    -99: OTHER,  # LIBUSB_ERROR_OTHER
}

# Message fragments librtlsdr / pyrtlsdr put in errors without a usable code.
MESSAGE_PATTERNS: tuple[tuple[str, FailureClass], ...] = (
    ("error loading librtlsdr", NO_LIBRARY),
    ("no devices", GONE),
    ("could not open sdr", GONE),
    ("usb_claim_interface", BUSY),
    ("short read", STALL),
    ("access denied", ACCESS),
    ("permission", ACCESS),
)


def classify_libusb(errno: int | None, message: str) -> FailureClass:
    """The failure class of a librtlsdr error (by code first, then by message)."""
    if errno is not None and errno in LIBUSB_ERRORS:
        return LIBUSB_ERRORS[errno]
    low = message.lower()
    for fragment, cls in MESSAGE_PATTERNS:
        if fragment in low:
            return cls
    return OTHER
