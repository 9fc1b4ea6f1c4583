"""The core tells the API when its store sink committed rows to the live feed: the bell rings
after the commit, the word travels on a connection the API keeps to the core's socket, and a
word that cannot be sent is counted, never waited for (the API's poll of the store remains)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

from scanner.clock import SYSTEM_CLOCK
from scanner.core.events import AlertRaised, CoreEvent, SensorHealth
from scanner.core.options import CoreOptions
from scanner.observations import Radio, SensorState, SensorStatus, WifiFrame
from scanner.runtime.build import check_store, core_loop_factory
from scanner.runtime.transport import (
    MAX_FEED_WATCHERS,
    EventQueue,
    FeedBell,
    FeedWatcher,
    SocketReceiver,
)
from scanner.runtime.transport.codec import FEED_WORD, WATCH_WORD, WatchFeed, decode_message
from scanner.sinks.store import StoreSink
from scanner.store.db import Store
from tests.core.helpers import Harness, probe
from tests.helpers.daemons import wait_for


class Wakes:
    """Counts the watcher's wake-ups (thread-safe enough: one writer)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def _receiver(path: Path, bell: FeedBell | None) -> SocketReceiver:
    receiver = SocketReceiver(path, EventQueue(1000), bell=bell)
    receiver.start()
    return receiver


def test_the_watch_word_is_a_message_of_its_own() -> None:
    assert decode_message(WATCH_WORD) == WatchFeed()
    assert FEED_WORD != WATCH_WORD


def test_a_watcher_hears_each_ring_and_is_forgotten_when_it_hangs_up(tmp_path: Path) -> None:
    bell = FeedBell()
    receiver = _receiver(tmp_path / "core.sock", bell)
    wakes = Wakes()
    watcher = FeedWatcher(tmp_path / "core.sock", wakes)
    watcher.start()
    try:
        assert wait_for(lambda: bell.listeners == 1, 5.0, every=0.01)
        assert receiver.watchers == 1 and receiver.clients == 1
        # Once for the connection: rows may have been committed while nobody listened.
        assert wait_for(lambda: wakes.count == 1, 5.0, every=0.01)
        for _ in range(3):
            bell.ring()
        assert wait_for(lambda: wakes.count == 4, 5.0, every=0.01)
        assert receiver.counters["feed_words"] == 3
        # The watch is not a record: nothing reached the core's queue.
        assert receiver.events.qsize() == 0
        assert receiver.counters["records"] == 0
    finally:
        watcher.close()
    assert wait_for(lambda: bell.listeners == 0, 5.0, every=0.01)
    assert receiver.watchers == 0
    bell.ring()  # nobody to tell: nothing fails
    assert bell.counters["listener_errors"] == 0
    receiver.close()


def test_a_watcher_reconnects_after_the_core_restarts(tmp_path: Path) -> None:
    path = tmp_path / "core.sock"
    bell = FeedBell()
    receiver = _receiver(path, bell)
    wakes = Wakes()
    watcher = FeedWatcher(path, wakes)
    watcher.start()
    try:
        assert wait_for(lambda: bell.listeners == 1, 5.0, every=0.01)
        receiver.close()
        assert wait_for(lambda: not watcher.connected, 5.0, every=0.01)
        assert bell.listeners == 0
        restarted = _receiver(path, bell)
        try:
            assert wait_for(lambda: bell.listeners == 1, 10.0, every=0.02)
            before = wakes.count
            bell.ring()
            assert wait_for(lambda: wakes.count == before + 1, 5.0, every=0.01)
            assert watcher.counters["connects"] == 2
        finally:
            restarted.close()
    finally:
        watcher.close()


def test_watchers_are_capped_and_a_core_without_a_bell_refuses_them(tmp_path: Path) -> None:
    bell = FeedBell()
    receiver = _receiver(tmp_path / "core.sock", bell)
    peers = []
    try:
        for _ in range(MAX_FEED_WATCHERS + 1):
            peer = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            peer.connect(str(tmp_path / "core.sock"))
            peer.send(WATCH_WORD)
            peers.append(peer)
        assert wait_for(lambda: receiver.counters["feed_watch_refused"] == 1, 5.0, every=0.01)
        assert bell.listeners == MAX_FEED_WATCHERS
    finally:
        for peer in peers:
            peer.close()
        receiver.close()

    lonely = _receiver(tmp_path / "other.sock", None)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as peer:
            peer.connect(str(tmp_path / "other.sock"))
            peer.send(WATCH_WORD)
            assert wait_for(lambda: lonely.counters["feed_watch_refused"] == 1, 5.0, every=0.01)
    finally:
        lonely.close()


def test_a_watcher_that_does_not_read_costs_the_core_a_counted_word_not_a_wait(
    tmp_path: Path,
) -> None:
    bell = FeedBell()
    receiver = _receiver(tmp_path / "core.sock", bell)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as peer:
            peer.connect(str(tmp_path / "core.sock"))
            peer.send(WATCH_WORD)
            assert wait_for(lambda: bell.listeners == 1, 5.0, every=0.01)
            # Ring until the socket's buffer is full: the ring returns every time.
            rings = 0
            while receiver.counters["feed_words_dropped"] == 0 and rings < 1_000_000:
                bell.ring()
                rings += 1
            assert receiver.counters["feed_words_dropped"] == 1
            assert receiver.counters["feed_words"] == rings - 1
            # What was sent is there to read, in full words.
            assert peer.recv(64) == FEED_WORD
    finally:
        receiver.close()


def _alert_and_the_rest() -> tuple[list[CoreEvent], list[AlertRaised]]:
    """The events of a phone walking in, from a core without a store."""
    harness = Harness()
    for i in range(8):
        harness.handle(probe(0.5 * i, "02:00:00:00:00:01", -40))
    raised = [e for e in harness.events if isinstance(e, AlertRaised)]
    rest: list[CoreEvent] = [e for e in harness.events if not isinstance(e, AlertRaised)]
    assert len(raised) == 1
    return rest, raised


def test_the_store_sink_rings_after_the_commit_of_rows_to_the_feed(tmp_path: Path) -> None:
    rest, raised = _alert_and_the_rest()
    store = Store(tmp_path / "checkpoint.db")
    reader = Store(tmp_path / "checkpoint.db")  # the API's own connection
    start = reader.last_event_id()
    seen_at_ring: list[list[str]] = []

    def on_feed() -> None:
        rows = reader.events_after(start)
        seen_at_ring.append([str(r["data"].get("event")) for r in rows])

    sink = StoreSink(store, on_feed=on_feed)
    # Devices, sightings and heard-marks are not on the feed: no word.
    sink.handle(rest)
    assert seen_at_ring == []
    sink.handle(raised)
    # One word, and the alert was readable from another connection when it came.
    assert seen_at_ring == [["raised"]]

    status = SensorStatus(time.time(), 1.0, "wlan1", Radio.WIFI, SensorState.OK, "capturing")
    sink.handle([SensorHealth(status)])
    assert len(seen_at_ring) == 2  # a sensor's first report is a change
    sink.handle([SensorHealth(replace(status, ts=status.ts + 5))])
    assert len(seen_at_ring) == 2  # the same state again adds no feed row
    store.close()
    reader.close()


def test_an_alarm_from_the_core_loop_reaches_a_watcher_once_it_is_in_the_store(
    tmp_path: Path,
) -> None:
    """The daemon layout: records in on the core's socket, the word out on the API's
    connection, and the alert readable from the store by the time the word arrives."""
    db = tmp_path / "checkpoint.db"
    check_store(db)
    bell = FeedBell()
    events = EventQueue(1000)
    receiver = SocketReceiver(tmp_path / "core.sock", events, bell=bell)
    receiver.start()
    loop = core_loop_factory(
        str(db), CoreOptions(allowlist_poll_s=3600.0), events, SYSTEM_CLOCK, bell=bell
    )()
    loop.start()
    reader = Store(db)
    start = reader.last_event_id()
    found_at_word: list[list[str]] = []
    lock = threading.Lock()

    def wake() -> None:
        rows = reader.events_after(start)
        with lock:
            found_at_word.append(
                [str(r["data"].get("event")) for r in rows if r["type"] == "alert"]
            )

    watcher = FeedWatcher(tmp_path / "core.sock", wake)
    watcher.start()
    try:
        assert wait_for(lambda: bell.listeners == 1, 5.0, every=0.01)
        base = time.monotonic()
        for i in range(8):
            frame = probe(time.monotonic() - base + i * 0.01, "02:00:00:00:00:01", -40)
            events.put(_at(frame, base))
        assert wait_for(lambda: any("raised" in f for f in found_at_word), 10.0, every=0.02)
        with lock:
            first = next(f for f in found_at_word if f)
        # The first word that found any alert row found the raise itself: no row before it.
        assert first[0] == "raised"
    finally:
        watcher.close()
        loop.stop(5.0)
        receiver.close()
        reader.close()


def _at(frame: WifiFrame, base: float) -> WifiFrame:
    """The frame on the process's monotonic clock, as a capture daemon stamps it."""
    return replace(frame, mono=base + frame.mono, ts=time.time())
