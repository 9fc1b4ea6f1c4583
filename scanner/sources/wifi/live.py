"""Live Wi-Fi capture: a monitor-mode interface through scapy's L2listen socket.

Where a Wi-Fi frame enters: ``WifiSource._capture`` receives raw bytes from the socket (already
filtered in the kernel by ``constants.BPF_FILTER``) and hands them to ``handle_raw``, the same
function a replayed pcap goes through in tests, which calls the parser (``dot11.parse_frame``)
and puts the record in a bounded queue (full: counted drop). A delivery thread drains the queue
into the sink. scapy is imported only when capture starts.

START LADDER (failures classified by ``constants.classify_message`` / ``classify_errno``; the
retry delay depends on the class, None meaning "retrying will not help"):

 1. Interface present?                          missing  -> fault, retry with backoff
 2. Monitor mode (``iw``), unless setup_monitor is off.
                                                cannot   -> fault, no retry ("adapter cannot")
                                                busy     -> fault, retry every 5 s
                                                denied   -> fault, no retry (capabilities)
 3. Link type from /sys (radiotap expected).    not monitor -> fault as 2.
 4. Tune the first channel and start hopping.   channel refused -> dropped from the plan;
                                                none left -> fault, retry with backoff
 5. Open the socket with the BPF filter.        errors classified as above
 6. Capture: state ok. Socket error (interface gone, ENETDOWN) -> fault "interface vanished",
    close everything, back to rung 1 after the class's backoff (doubling up to 60 s).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from scanner.clock import SYSTEM_CLOCK, Clock
from scanner.observations import Radio, SensorState
from scanner.sources.backoff import Backoff
from scanner.sources.base import BoundedHandoff, Sink, Source
from scanner.sources.wifi import monitor
from scanner.sources.wifi.constants import (
    ADVICE,
    RETRY_SCHEDULES,
    SOCKET_POLL_S,
    IwErrorClass,
    classify_errno,
)
from scanner.sources.wifi.dot11 import parse_frame
from scanner.sources.wifi.errors import MonitorError
from scanner.sources.wifi.hopper import ChannelHopper
from scanner.sources.wifi.options import WifiOptions
from scanner.sources.wifi.recorder import PcapWriter

_LOGGER = logging.getLogger(__name__)


class RawSocket(Protocol):
    """What the capture loop needs from a socket: raw frames with a timestamp, and close."""

    def recv_frame(self) -> tuple[bytes, float | None] | None:
        """One frame and its kernel timestamp; None when nothing arrived within the poll."""
        ...

    def close(self) -> None: ...


SocketFactory = Callable[[str, str], RawSocket]


class ScapyListenSocket:
    """scapy's ``conf.L2listen`` with a kernel BPF filter; the only place scapy is used live."""

    def __init__(self, iface: str, bpf: str) -> None:
        import scapy.arch  # sets conf.L2listen for this platform
        import scapy.layers.dot11  # noqa: F401 - registers the radiotap link type
        from scapy.config import conf

        if conf.L2listen is None:
            raise MonitorError(IwErrorClass.UNKNOWN, f"{iface}: scapy has no capture socket here")
        # scapy compiles the filter for the link type of its interface list, read once at
        # import: by now the interface may have been switched to monitor mode (or deleted and
        # re-added), and a filter compiled for Ethernet fails on 802.11 keywords. Re-read it.
        conf.ifaces.reload()
        try:
            self._sock = conf.L2listen(iface=iface, filter=bpf)
        except OSError:
            raise
        except Exception as exc:  # scapy reports a filter it cannot compile as Scapy_Exception
            raise MonitorError(
                IwErrorClass.BAD_FILTER, f"{iface}: cannot open the capture socket: {exc}"
            ) from exc
        self._sock.ins.settimeout(SOCKET_POLL_S)

    def recv_frame(self) -> tuple[bytes, float | None] | None:
        try:
            _cls, data, ts = self._sock.recv_raw(65535)
        except TimeoutError:
            return None
        if data is None:
            return None
        return bytes(data), ts

    def close(self) -> None:
        self._sock.close()


class WifiSource(Source):
    """The live Wi-Fi source: monitor interface, kernel filter, channel hopping, parser."""

    radio = Radio.WIFI

    def __init__(
        self,
        options: WifiOptions,
        sink: Sink,
        clock: Clock = SYSTEM_CLOCK,
        *,
        socket_factory: SocketFactory | None = None,
        tune: Callable[[str, int], None] = monitor.set_channel,
        setup: Callable[[str], None] = monitor.ensure_monitor,
        linktype_of: Callable[[str], int] = monitor.interface_linktype,
    ) -> None:
        super().__init__(options, sink, clock)
        self.wifi_options = options
        self._handoff = BoundedHandoff(options.queue_size, self.counters)
        self._socket_factory: SocketFactory = socket_factory or ScapyListenSocket
        self._tune = tune
        self._setup = setup
        self._linktype_of = linktype_of
        self._threads: list[threading.Thread] = []
        self._socket: RawSocket | None = None
        self._hopper: ChannelHopper | None = None
        self._recorder: PcapWriter | None = None
        self._lock = threading.Lock()
        self.linktype = 127
        self.last_error: IwErrorClass | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the supervisor (ladder + capture) and the delivery thread; returns at once."""
        self._stop.clear()
        self.set_state(SensorState.STARTING)
        for target, name in ((self._supervise, "capture"), (self._drain, "deliver")):
            thread = threading.Thread(target=target, name=f"wifi-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop capture, hopping and delivery; close the socket and any recording."""
        super().stop()
        self._close_capture()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)
        self._threads.clear()
        with self._lock:
            if self._recorder is not None:
                self._recorder.close()
                self._recorder = None
        self.set_state(SensorState.STOPPED)

    # -- the code after the socket ----------------------------------------------------------
    def handle_raw(self, data: bytes, linktype: int, ts: float, mono: float) -> bool:
        """Parse one captured frame and queue its record; False if skipped or dropped.

        Live capture and the tests' pcap replay both come through here.
        """
        frame = parse_frame(data, linktype, ts, mono, self.counters)
        if frame is None:
            return False
        return self._handoff.put(frame)

    def health_detail(self) -> dict[str, object]:
        detail = super().health_detail()
        hopper = self._hopper
        detail["interface"] = self.wifi_options.interface
        detail["queue"] = self._handoff.qsize()
        if hopper is not None:
            detail["channel"] = hopper.current.channel if hopper.current else None
            detail["plan"] = [c.channel for c in hopper.plan]
            detail["dropped_channels"] = list(hopper.dropped)
        return detail

    # -- threads ---------------------------------------------------------------------------
    def _drain(self) -> None:
        last_status = self.clock.monotonic()
        interval = self.wifi_options.status_interval_s
        while not self.stopping:
            event = self._handoff.get(timeout=0.25)
            if event is not None:
                self.deliver(event)
            now = self.clock.monotonic()
            if interval > 0 and now - last_status >= interval:
                last_status = now
                self.check_silence()
                self._sink(self.status())

    def _supervise(self) -> None:
        backoff = Backoff(RETRY_SCHEDULES)
        delay: float | None = None
        while not self.stopping:
            try:
                self._open_capture()
                self.set_state(SensorState.OK)
                self.last_error = None
                backoff.reset()
                delay = None
                self._capture()
            except MonitorError as exc:
                delay = self._failed(exc.cls, str(exc), backoff)
            except OSError as exc:
                cls = classify_errno(exc.errno)
                iface = self.wifi_options.interface
                if cls == IwErrorClass.NO_INTERFACE:
                    message = f"{iface}: interface vanished ({exc.strerror or exc}); "
                    message += "check the adapter is plugged in (unplug and replug it)"
                else:
                    message = f"{ADVICE[cls].format(iface=iface)} ({exc.strerror or exc})"
                delay = self._failed(cls, message, backoff)
            except Exception as exc:
                # A bug must not end capture silently: say so, and start again after a pause.
                _LOGGER.exception("%s: capture failed", self.options.sensor)
                delay = self._failed(IwErrorClass.UNKNOWN, f"capture failed: {exc!r}", backoff)
            finally:
                self._close_capture()
            if self.stopping or delay is None:
                # Stopped, or an error that retrying will not fix: the fault state stays.
                return
            self.counters["restarts"] += 1
            if self._stop.wait(delay):
                return

    def _failed(
        self, cls: IwErrorClass, message: str, backoff: Backoff[IwErrorClass]
    ) -> float | None:
        """Report a failed rung as a fault; the next delay (None: do not retry)."""
        self.counters[f"error_{cls.value}"] += 1
        if cls != self.last_error:
            self.last_error = cls
        else:
            _LOGGER.debug("%s: again: %s", self.options.sensor, message)
        self.set_state(SensorState.FAULT, message)
        return backoff.failed(cls)

    def _open_capture(self) -> None:
        opts = self.wifi_options
        iface = opts.interface
        # A hopper error left from an attempt that had already failed otherwise (the socket
        # saw the interface go first) must not end this new, healthy capture.
        self._pending_error = None
        if opts.setup_monitor:
            self._setup(iface)
        self.linktype = self._linktype_of(iface)
        if opts.hop:
            hopper = ChannelHopper(iface, opts.plan, self._tune, self.counters, self._hop_failed)
            hopper.start()
            self._hopper = hopper
        self._socket = self._socket_factory(iface, opts.bpf)
        with self._lock:
            if opts.record_path and self._recorder is None:
                self._recorder = PcapWriter(opts.record_path, self.linktype)

    def _hop_failed(self, exc: MonitorError) -> None:
        # The hopper thread hit an interface-level error: close the socket so the capture loop
        # wakes, and let the supervisor classify and retry.
        self._pending_error = exc
        sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    _pending_error: MonitorError | None = None

    def _capture(self) -> None:
        sock = self._socket
        if sock is None:
            return
        linktype = self.linktype
        clock = self.clock
        handle = self.handle_raw
        while not self.stopping:
            pending = self._pending_error
            if pending is not None:
                self._pending_error = None
                raise pending
            try:
                got = sock.recv_frame()
            except OSError:
                if self.stopping:
                    return  # our own stop closed the socket: not a fault
                pending = self._pending_error
                if pending is not None:
                    # The hopper closed the socket to wake us: its error is the real one,
                    # not the EBADF the closed socket raised.
                    self._pending_error = None
                    raise pending from None
                raise
            if got is None:
                continue
            data, kernel_ts = got
            self.counters["captured"] += 1
            ts = kernel_ts if kernel_ts is not None else clock.wall()
            recorder = self._recorder
            if recorder is not None:
                recorder.write(ts, data)
            handle(data, linktype, ts, clock.monotonic())

    def _close_capture(self) -> None:
        hopper, self._hopper = self._hopper, None
        if hopper is not None:
            hopper.stop()
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        with self._lock:
            if self._recorder is not None:
                self._recorder.flush()


def build_source(
    section: Mapping[str, Any],
    sink: Sink,
    clock: Clock = SYSTEM_CLOCK,
    record_path: str | None = None,
) -> WifiSource:
    """The live Wi-Fi source for a ``[wifi]`` section (``record_path`` from ``--record``)."""
    options = WifiOptions.from_mapping(section)
    if record_path is not None:
        from dataclasses import replace

        options = replace(options, record_path=record_path)
    return WifiSource(options, sink, clock)


def wait_until(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.01) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` passes (tests and the CLI use it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
