"""A client of the standard ``rtl_tcp`` protocol, for a dongle on a mast or a second Pi.

The server sends a 12-byte header (``RTL0``, tuner type, gain count; big-endian) and then an
endless stream of cu8 IQ. The client sends 5-byte commands: one command byte and a big-endian
32-bit value. Every socket call has a timeout; a stream that delivers nothing for
``stall_s`` is a stall, a closed socket is a drop, and both surface as ``CaptureError`` with
the failure class the capture loop uses to report and back off.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scanner.sources.sdr.constants import DROPPED, PROTOCOL, REFUSED, STALL, TUNE
from scanner.sources.sdr.errors import CaptureError

_LOGGER = logging.getLogger(__name__)
# The most backlog thrown away after a retune: rtl_tcp's own list (500 x 16 KiB) and the
# socket buffers, about two seconds of 2.4 MS/s.
DISCARD_MAX_BYTES = 12 << 20

HEADER = struct.Struct(">4sII")  # magic, tuner type, gain count
COMMAND = struct.Struct(">BI")
CMD_SET_FREQ = 0x01
CMD_SET_SAMPLE_RATE = 0x02
CMD_SET_GAIN_MODE = 0x03  # 1 = manual gain
CMD_SET_GAIN = 0x04  # tenths of a dB
CMD_SET_FREQ_CORRECTION = 0x05  # ppm (signed, sent as two's complement)
CMD_SET_AGC_MODE = 0x08  # RTL2832 digital AGC

TUNER_TYPES = {0: "unknown", 1: "E4000", 2: "FC0012", 3: "FC0013", 4: "FC2580", 5: "R820T",
               6: "R828D"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the rtl_tcp header says about the dongle behind it."""

    tuner: str
    gain_count: int


class RtlTcpClient:
    """One connection to an rtl_tcp server (a tuner front end)."""

    # After a retune the server's buffers and both TCP buffers still carry old samples; the
    # receive buffer is kept small (below) so this bound holds at 2.4 MS/s.
    retune_latency_s = 0.05

    def __init__(
        self, host: str, port: int, connect_timeout_s: float = 3.0, stall_s: float = 2.0
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.stall_s = stall_s
        self._sock: socket.socket | None = None
        self.info: ServerInfo | None = None

    @property
    def where(self) -> str:
        return f"rtl_tcp {self.host}:{self.port}"

    def open(self) -> ServerInfo:
        """Connect and read the header (CaptureError: refused, dropped or not rtl_tcp)."""
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout_s)
        except TimeoutError as exc:
            raise CaptureError(REFUSED, f"{self.where}: connection timed out") from exc
        except OSError as exc:
            raise CaptureError(REFUSED, f"{self.where}: {exc.strerror or exc}") from exc
        sock.settimeout(self.stall_s)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 17)
        self._sock = sock
        head = self._recv_exact(HEADER.size)
        magic, tuner, gains = HEADER.unpack(head)
        if magic != b"RTL0":
            self.close()
            raise CaptureError(PROTOCOL, f"{self.where}: bad header {head[:4]!r}")
        self.info = ServerInfo(TUNER_TYPES.get(tuner, f"type {tuner}"), gains)
        _LOGGER.debug("%s: tuner %s, %d gains", self.where, self.info.tuner, gains)
        return self.info

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                _LOGGER.debug("%s: close failed", self.where)
            self._sock = None

    # -- commands ----------------------------------------------------------------------------
    def command(self, cmd: int, value: int) -> None:
        """Send one 5-byte command; values are sent as unsigned 32-bit (two's complement)."""
        sock = self._require()
        try:
            sock.sendall(COMMAND.pack(cmd, value & 0xFFFFFFFF))
        except TimeoutError as exc:
            raise CaptureError(STALL, f"{self.where}: command 0x{cmd:02x} timed out") from exc
        except OSError as exc:
            raise CaptureError(DROPPED, f"{self.where}: {exc.strerror or exc}") from exc

    def set_center_freq(self, hz: float) -> None:
        if not 0 < hz < 2**32:
            raise CaptureError(TUNE, f"{self.where}: cannot tune to {hz:.0f} Hz")
        self.command(CMD_SET_FREQ, round(hz))

    def set_sample_rate(self, rate: float) -> None:
        self.command(CMD_SET_SAMPLE_RATE, round(rate))

    def set_gain(self, gain_db: float | None) -> None:
        """A fixed gain in dB, or None for the tuner's automatic gain."""
        if gain_db is None:
            self.command(CMD_SET_GAIN_MODE, 0)
            return
        self.command(CMD_SET_GAIN_MODE, 1)
        self.command(CMD_SET_GAIN, round(gain_db * 10))

    def set_freq_correction(self, ppm: int) -> None:
        self.command(CMD_SET_FREQ_CORRECTION, ppm)

    def set_agc_mode(self, on: bool) -> None:
        self.command(CMD_SET_AGC_MODE, int(on))

    # -- stream ------------------------------------------------------------------------------
    def discard_buffered(self) -> int:
        """Throw away the IQ that has already arrived; returns how many bytes.

        After a retune everything queued between the dongle and us was sampled at the old
        frequency: rtl_tcp keeps up to 500 USB blocks (8 MB) in its own list and the kernel
        buffers more on both ends, far beyond the fixed settle read when the client fell
        behind. Bytes that are ready at once are the backlog; the stream is live again when a
        read would have to wait. Bounded so a server that never pauses cannot hold us here.
        """
        sock = self._require()
        buf = bytearray(1 << 16)
        dropped = 0
        while dropped < DISCARD_MAX_BYTES:
            ready, _, _ = select.select([sock], [], [], 0)
            if not ready:
                break
            try:
                k = sock.recv_into(buf)
            except OSError as exc:
                raise CaptureError(DROPPED, f"{self.where}: {exc.strerror or exc}") from exc
            if k == 0:
                raise CaptureError(DROPPED, f"{self.where}: connection closed by the server")
            dropped += k
        return dropped

    def read(self, n_bytes: int) -> npt.NDArray[np.uint8]:
        """Exactly ``n_bytes`` of cu8 IQ (CaptureError on stall or drop)."""
        return np.frombuffer(self._recv_exact(n_bytes), dtype=np.uint8)

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise CaptureError(DROPPED, f"{self.where}: not connected")
        return self._sock

    def _recv_exact(self, n: int) -> bytes:
        sock = self._require()
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = sock.recv_into(view[got:], n - got)
            except TimeoutError as exc:
                raise CaptureError(STALL, f"{self.where}: no IQ for {self.stall_s:.1f} s") from exc
            except OSError as exc:
                raise CaptureError(DROPPED, f"{self.where}: {exc.strerror or exc}") from exc
            if k == 0:
                raise CaptureError(DROPPED, f"{self.where}: connection closed by the server")
            got += k
        return bytes(buf)
