"""IQ sample formats: decode the datatypes a recording or a dongle delivers into complex64.

An RTL-SDR delivers unsigned 8-bit I/Q pairs (``cu8``, 127.5 is zero). Everything downstream
works on complex64 scaled so that full scale is magnitude 1.0, which makes powers dBFS directly.
Decoding uses a 256-entry lookup table: one indexed gather per byte, no per-sample Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# datatype -> (numpy dtype of one scalar, scale to full scale 1.0, zero offset)
DATATYPES: dict[str, tuple[str, float, float]] = {
    "cu8": ("u1", 127.5, 127.5),
    "ci8": ("i1", 128.0, 0.0),
    "ci16_le": ("<i2", 32768.0, 0.0),
    "cf32_le": ("<f4", 1.0, 0.0),
}

# Bytes of one complex sample per datatype.
SAMPLE_BYTES: dict[str, int] = {"cu8": 2, "ci8": 2, "ci16_le": 4, "cf32_le": 8}

_CI8_LUT = (np.arange(256, dtype=np.float32) - 256 * (np.arange(256) >= 128)).astype(
    np.float32
) / np.float32(128.0)

Complex64Array = npt.NDArray[np.complex64]
UInt8Array = npt.NDArray[np.uint8]


def scalar_dtype(datatype: str) -> np.dtype[np.generic]:
    """The numpy dtype of one I or Q scalar of ``datatype`` (ValueError if unsupported)."""
    try:
        return np.dtype(DATATYPES[datatype][0])
    except KeyError:
        raise ValueError(
            f"unsupported IQ datatype {datatype!r}; expected one of {', '.join(DATATYPES)}"
        ) from None


def to_complex64(raw: npt.NDArray[np.generic], datatype: str) -> Complex64Array:
    """Interleaved scalars of ``datatype`` -> complex64 at full scale 1.0.

    An odd trailing scalar (a torn I/Q pair at the end of a file) is dropped.
    """
    if raw.size % 2:
        raw = raw[:-1]
    if datatype == "cu8":
        # One widening subtract and one in-place scale: 4x faster than a table gather.
        out = np.subtract(raw.view(np.uint8), np.float32(127.5), dtype=np.float32)
        out *= np.float32(1.0 / 127.5)
        return out.view(np.complex64)
    if datatype == "ci8":
        return _CI8_LUT[raw.view(np.uint8)].view(np.complex64)
    if datatype == "cf32_le":
        return np.ascontiguousarray(raw.view("<f4"), dtype=np.float32).view(np.complex64)
    if datatype == "ci16_le":
        scaled = raw.view("<i2").astype(np.float32) * np.float32(1.0 / 32768.0)
        return scaled.view(np.complex64)
    scalar_dtype(datatype)  # raises the clear error
    return np.zeros(0, dtype=np.complex64)


def clipped_count(raw: npt.NDArray[np.generic], datatype: str) -> int:
    """How many 8-bit scalars sit at the rails (0 or 255 for cu8): the overload signal."""
    if datatype == "cu8":
        u = raw.view(np.uint8)
        # A read off the rails (the usual case at a sane gain) is told by its extremes: two
        # reductions that allocate nothing, a quarter of the cost of counting.
        if u.size == 0 or (u.min() > 0 and u.max() < 255):
            return 0
        # One pass for both rails: subtracting 1 wraps 0 to 255 and takes 255 to 254.
        return int(np.count_nonzero(np.subtract(u, np.uint8(1)) >= 254))
    if datatype == "ci8":
        i = raw.view(np.int8)
        return int(np.count_nonzero(i == -128) + np.count_nonzero(i == 127))
    return 0


def quantise_cu8(iq: Complex64Array) -> UInt8Array:
    """complex samples (full scale 1.0) -> interleaved cu8 as a dongle delivers them.

    Values beyond full scale clip at the rails exactly as the RTL2832's ADC does.
    """
    flat = np.asarray(iq, dtype=np.complex64).view(np.float32)
    scaled = flat * np.float32(127.5) + np.float32(127.5)
    np.clip(np.rint(scaled), 0, 255, out=scaled)
    return scaled.astype(np.uint8)
