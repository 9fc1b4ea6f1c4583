"""Run the libraries the daemons use under systemd's MemoryDenyWriteExecute=yes, and report.

Run as a script (the restriction cannot be lifted once set, so it gets its own process). It
installs the seccomp filter systemd 252 installs for that option (``sandbox.py``), exercises each
library and prints one ``name ok|skip: why|FAIL: why`` line per probe.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

from tests.appliance.sandbox import install


def _wx_mmap_refused() -> None:
    import mmap

    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        return
    raise RuntimeError("a writable and executable mapping was allowed: the filter is not active")


def _ctypes_callback() -> None:
    libc = ctypes.CDLL(None)
    cmp_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)

    def compare(a: int, b: int) -> int:
        x = ctypes.cast(a, ctypes.POINTER(ctypes.c_int)).contents.value
        y = ctypes.cast(b, ctypes.POINTER(ctypes.c_int)).contents.value
        return (x > y) - (x < y)

    arr = (ctypes.c_int * 4)(3, 1, 4, 2)
    libc.qsort(arr, 4, ctypes.sizeof(ctypes.c_int), cmp_t(compare))
    if list(arr) != [1, 2, 3, 4]:
        raise RuntimeError(f"qsort through a ctypes callback gave {list(arr)}")


def _numpy() -> None:
    import numpy as np

    iq = np.exp(2j * np.pi * 0.1 * np.arange(4096, dtype=np.float32)).astype(np.complex64)
    if int(np.argmax(np.abs(np.fft.fft(iq)))) != 410:
        raise RuntimeError("FFT peak in the wrong bin")


def _librtlsdr() -> None:
    from rtlsdr.librtlsdr import librtlsdr  # loads the shared library, as the SDR daemon does

    librtlsdr.rtlsdr_get_device_count()
    # The streaming read hands librtlsdr a ctypes callback of this type.
    from rtlsdr.librtlsdr import rtlsdr_read_async_cb_t

    rtlsdr_read_async_cb_t(lambda *_args: None)


def _argon2() -> None:
    from argon2 import PasswordHasher

    ph = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    ph.verify(ph.hash("pin"), "pin")


def _orjson() -> None:
    # The core reads its socket's lines with it (scanner.runtime.transport.codec).
    import orjson

    if orjson.loads(b'{"v":1,"ts":1.5,"raw":"00"}') != {"v": 1, "ts": 1.5, "raw": "00"}:
        raise RuntimeError("orjson did not read its line")


def _api_stack() -> None:
    import fastapi
    import pydantic
    import uvicorn

    class M(pydantic.BaseModel):
        x: int

    if (
        M.model_validate({"x": "3"}).x != 3
        or not callable(fastapi.FastAPI)
        or not callable(uvicorn.Config)
    ):
        raise RuntimeError("pydantic-core did not validate")


def _dbus_and_bleak() -> None:
    import bleak
    import dbus_fast

    if not (callable(bleak.BleakScanner) and callable(dbus_fast.Message)):
        raise RuntimeError("import incomplete")


def _scapy() -> None:
    from scapy.layers.dot11 import Dot11, RadioTap

    frame = bytes(RadioTap() / Dot11(type=0, subtype=4))
    if len(frame) < 10:
        raise RuntimeError("frame not built")


PROBES: dict[str, Callable[[], None]] = {
    "filter-active": _wx_mmap_refused,
    "ctypes-callback": _ctypes_callback,
    "numpy": _numpy,
    "librtlsdr": _librtlsdr,
    "argon2": _argon2,
    "orjson": _orjson,
    "fastapi-pydantic-uvicorn": _api_stack,
    "dbus-fast-bleak": _dbus_and_bleak,
    "scapy": _scapy,
}


def main(names: list[str]) -> int:
    install(families=None, deny_write_execute=True)
    for name in names or list(PROBES):
        try:
            PROBES[name]()
        except ModuleNotFoundError as exc:
            print(f"{name} skip: {exc}")
        except Exception as exc:  # an ImportError here is a library the filter broke
            print(f"{name} FAIL: {type(exc).__name__}: {exc}")
        else:
            print(f"{name} ok")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
