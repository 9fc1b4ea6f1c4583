"""The seccomp half of a unit's sandbox, for tests on a machine where systemd is not PID 1.

``python sandbox.py --families AF_UNIX,AF_INET -- CMD ARGS...`` installs, on itself, the filters
systemd 252 installs for ``MemoryDenyWriteExecute=yes`` and ``RestrictAddressFamilies=`` and then
executes CMD, which inherits them (seccomp filters survive execve):

* mmap with PROT_WRITE and PROT_EXEC together, mprotect/pkey_mprotect adding PROT_EXEC, and shmat
  with SHM_EXEC fail with EPERM;
* socket() with a family outside the list fails with EAFNOSUPPORT (as in systemd, socketpair() and
  sockets handed over by others are not affected).

The filter is a classic BPF program assembled here with symbolic jump labels.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import socket
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
EPERM, EAFNOSUPPORT = 1, 97
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
# audit arch and syscall numbers: mmap, mprotect, pkey_mprotect, shmat, socket.
SYSCALLS = {
    "x86_64": (0xC000003E, {"mmap": 9, "mprotect": 10, "pkey_mprotect": 329, "shmat": 30,
                            "socket": 41}),
    "aarch64": (0xC00000B7, {"mmap": 222, "mprotect": 226, "pkey_mprotect": 288, "shmat": 196,
                             "socket": 198}),
}  # fmt: skip
LD_ABS, JEQ, AND, RET = 0x20, 0x15, 0x54, 0x06
OFF_NR, OFF_ARCH, OFF_ARG0, OFF_ARG2 = 0, 4, 16, 32  # struct seccomp_data, little-endian


class _Program:
    """BPF with labels: jumps name their targets, resolved to relative offsets at the end."""

    def __init__(self) -> None:
        self.ops: list[tuple[int, int | str, int | str, int]] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.ops)

    def op(self, code: int, k: int, jt: int | str = 0, jf: int | str = 0) -> None:
        self.ops.append((code, jt, jf, k))

    def assemble(self) -> bytes:
        out = b""
        for index, (code, jt, jf, k) in enumerate(self.ops):
            offsets = []
            for target in (jt, jf):
                if isinstance(target, str):
                    offset = self.labels[target] - index - 1
                    if not 0 <= offset <= 255:
                        raise ValueError(f"jump to {target} out of range")
                    offsets.append(offset)
                else:
                    offsets.append(int(target))
            out += struct.pack("=HBBI", code, offsets[0], offsets[1], k)
        return out


def build_filter(families: set[int] | None, deny_write_execute: bool = True) -> bytes:
    arch, nr = SYSCALLS[platform.machine()]
    p = _Program()
    p.op(LD_ABS, OFF_ARCH)
    p.op(JEQ, arch, 0, "allow")
    p.op(LD_ABS, OFF_NR)
    if deny_write_execute:
        p.op(JEQ, nr["mmap"], "mmap", 0)
        p.op(JEQ, nr["mprotect"], "mprotect", 0)
        p.op(JEQ, nr["pkey_mprotect"], "mprotect", 0)
        p.op(JEQ, nr["shmat"], "shmat", 0)
    if families is not None:
        p.op(JEQ, nr["socket"], "socket", 0)
    p.op(RET, RET_ALLOW)
    if deny_write_execute:
        p.label("mmap")
        p.op(LD_ABS, OFF_ARG2)
        p.op(AND, PROT_WRITE | PROT_EXEC)
        p.op(JEQ, PROT_WRITE | PROT_EXEC, "eperm", "allow")
        p.label("mprotect")
        p.op(LD_ABS, OFF_ARG2)
        p.op(AND, PROT_EXEC)
        p.op(JEQ, PROT_EXEC, "eperm", "allow")
        p.label("shmat")
        p.op(LD_ABS, OFF_ARG2)
        p.op(AND, SHM_EXEC)
        p.op(JEQ, SHM_EXEC, "eperm", "allow")
    if families is not None:
        p.label("socket")
        p.op(LD_ABS, OFF_ARG0)
        for family in sorted(families):
            p.op(JEQ, family, "allow", 0)
        p.op(RET, RET_ERRNO | EAFNOSUPPORT)
    p.label("eperm")
    p.op(RET, RET_ERRNO | EPERM)
    p.label("allow")
    p.op(RET, RET_ALLOW)
    return p.assemble()


def install(families: set[int] | None, deny_write_execute: bool = True) -> None:
    """Install the filter on the calling process; it cannot be removed again."""
    code = build_filter(families, deny_write_execute)
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    prog = SockFprog(len(code) // 8, ctypes.addressof(buf))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP failed")


# Linux's numbers, for a Python built without a family's support (AF_BLUETOOTH needs the
# bluetooth headers at build time).
LINUX_FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17,
                  "AF_BLUETOOTH": 31}  # fmt: skip


def family_numbers(names: str) -> set[int]:
    """``AF_UNIX AF_INET`` (space or comma separated) -> their numbers on this machine."""
    out = set()
    for name in names.replace(",", " ").split():
        number = getattr(socket, name, None)
        out.add(int(number) if number is not None else LINUX_FAMILIES[name])
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", help="allowed address families, e.g. 'AF_UNIX AF_INET'")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    install(family_numbers(args.families) if args.families else None)
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
