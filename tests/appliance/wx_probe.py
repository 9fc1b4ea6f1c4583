"""Run the libraries the daemons use under systemd's MemoryDenyWriteExecute=yes, and report.

Run as a script (the restriction cannot be lifted once set, so it gets its own process). It
installs the same seccomp filter systemd 252 installs for that option: mmap with PROT_WRITE and
PROT_EXEC together, mprotect/pkey_mprotect adding PROT_EXEC, and shmat with SHM_EXEC fail with
EPERM. Then it exercises each library and prints one ``name ok|FAIL: why`` line per probe.
"""

from __future__ import annotations

import ctypes
import platform
import struct
import sys
from collections.abc import Callable

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | 1
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
# audit arch, mmap, mprotect, pkey_mprotect, shmat: per architecture.
SYSCALLS = {
    "x86_64": (0xC000003E, 9, 10, 329, 30),
    "aarch64": (0xC00000B7, 222, 226, 288, 196),
}
LD_ABS, JEQ, AND, RET = 0x20, 0x15, 0x54, 0x06


def _filter() -> bytes:
    arch, mmap_nr, mprotect_nr, pkey_nr, shmat_nr = SYSCALLS[platform.machine()]
    ops: list[tuple[int, int, int, int]] = [
        (LD_ABS, 0, 0, 4),  # 0 arch
        (JEQ, 1, 0, arch),  # 1 native? go on : allow
        (RET, 0, 0, RET_ALLOW),  # 2
        (LD_ABS, 0, 0, 0),  # 3 nr
        (JEQ, 4, 0, mmap_nr),  # 4 -> 9
        (JEQ, 7, 0, mprotect_nr),  # 5 -> 13
        (JEQ, 6, 0, pkey_nr),  # 6 -> 13
        (JEQ, 9, 0, shmat_nr),  # 7 -> 17
        (RET, 0, 0, RET_ALLOW),  # 8
        (LD_ABS, 0, 0, 32),  # 9 mmap: args[2] = prot
        (AND, 0, 0, PROT_WRITE | PROT_EXEC),  # 10
        (JEQ, 0, 9, PROT_WRITE | PROT_EXEC),  # 11 W and X -> 12 deny, else -> 21 allow
        (RET, 0, 0, RET_EPERM),  # 12
        (LD_ABS, 0, 0, 32),  # 13 mprotect: args[2] = prot
        (AND, 0, 0, PROT_EXEC),  # 14
        (JEQ, 0, 5, PROT_EXEC),  # 15 adds X -> 16 deny, else -> 21 allow
        (RET, 0, 0, RET_EPERM),  # 16
        (LD_ABS, 0, 0, 32),  # 17 shmat: args[2] = shmflg
        (AND, 0, 0, SHM_EXEC),  # 18
        (JEQ, 0, 1, SHM_EXEC),  # 19 -> 20 deny, else -> 21 allow
        (RET, 0, 0, RET_EPERM),  # 20
        (RET, 0, 0, RET_ALLOW),  # 21
    ]
    return b"".join(struct.pack("=HBBI", *op) for op in ops)


def deny_write_execute() -> None:
    """Install the filter on this process (irreversible)."""
    libc = ctypes.CDLL(None, use_errno=True)
    code = _filter()
    buf = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    prog = SockFprog(len(code) // 8, ctypes.addressof(buf))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


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


def _api_stack() -> None:
    import fastapi
    import pydantic
    import uvicorn

    class M(pydantic.BaseModel):
        x: int

    if M.model_validate({"x": "3"}).x != 3 or not fastapi.FastAPI or not uvicorn.Config:
        raise RuntimeError("pydantic-core did not validate")


def _dbus_and_bleak() -> None:
    import bleak
    import dbus_fast

    if not (bleak.BleakScanner and dbus_fast.Message):
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
    "fastapi-pydantic-uvicorn": _api_stack,
    "dbus-fast-bleak": _dbus_and_bleak,
    "scapy": _scapy,
}


def main(names: list[str]) -> int:
    deny_write_execute()
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
