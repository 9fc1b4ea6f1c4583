"""The live feed woken by the core's word: with the store poll set to a minute, only the word can
bring an alert to the stream, and it brings every new row, in order, once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from api.app import create_app
from api.feed import LiveFeed
from api.settings import ApiSettings
from scanner.store import alerts as alert_store
from scanner.store.db import Store
from tests.api.api_helpers import LiveServer, live_login, make_alert, serve
from tests.api.test_api_sse import _events

# The longest poll and heartbeat the settings allow; no test waits that long, so an event that
# arrives came because the feed was woken.
NEVER_S = 60.0
NO_BEAT_S = 300.0


@pytest.fixture
def feed() -> LiveFeed:
    return LiveFeed()


@pytest.fixture
def woken(store: Store, feed: LiveFeed) -> Iterator[LiveServer]:
    settings = ApiSettings(
        store_path=store.path, event_poll_s=NEVER_S, heartbeat_s=NO_BEAT_S, sse_retry_ms=500
    )
    yield from serve(create_app(settings, feed=feed))


def _data_events(events: Iterator[dict[str, Any]], want: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for item in events:
        if item.get("event") == "alert":
            got.append(item)
            if len(got) == want:
                return got
    raise AssertionError("stream ended")


def test_a_woken_stream_reads_the_new_rows_without_its_poll(
    woken: LiveServer, store: Store, feed: LiveFeed
) -> None:
    client = live_login(woken.url, "guard")
    with client.stream("GET", "/api/v1/events") as stream:
        events = _events(stream.iter_lines())
        assert next(e for e in events if e.get("event") == "hello")
        t0 = time.time()
        ids = []
        for i in range(3):
            ids.append(alert_store.raise_alert(store, make_alert(f"w{i}", t0 + i)))
            feed.wake()  # as the core's word comes: after the commit, from another thread
        got = _data_events(events, 3)
    assert [int(g["id"]) for g in got] == ids
    assert [json.loads(g["data"])["data"]["alert"]["id"] for g in got] == ["w0", "w1", "w2"]


def test_rows_committed_while_a_stream_reads_are_not_slept_through() -> None:
    """A word that arrives between the stream's mark and its wait ends the wait at once."""

    async def scenario() -> None:
        feed = LiveFeed()
        seen = feed.mark()
        # The store read is in progress when the word comes, from the watcher's thread.
        waker = threading.Thread(target=feed.wake)
        waker.start()
        waker.join()
        await asyncio.sleep(0)  # the wake-up scheduled on this loop runs
        await asyncio.wait_for(feed.wait(seen, NEVER_S), 10.0)
        assert feed.generation == seen + 1

    asyncio.run(scenario())


def test_a_wake_before_any_stream_is_harmless(feed: LiveFeed) -> None:
    feed.wake()
    assert feed.generation == 0
    assert feed.counters["wakes"] == 0


def test_an_acknowledgement_made_through_the_api_wakes_its_own_streams(
    woken: LiveServer, store: Store
) -> None:
    # Nobody rings the feed here but the API itself: with the poll at a minute, the stream
    # hears the acknowledgement only because the API's own write woke it.
    alert_store.raise_alert(store, make_alert("a1", time.time()))
    watching = live_login(woken.url, "guard")
    acking = live_login(woken.url, "guard")
    with watching.stream("GET", "/api/v1/events") as stream:
        events = _events(stream.iter_lines())
        assert next(e for e in events if e.get("event") == "hello")
        reply = acking.post("/api/v1/alerts/a1/ack", json={"note": "seen"})
        assert reply.status_code == 200, reply.text
        (got,) = _data_events(events, 1)
    data = json.loads(got["data"])["data"]
    assert data["event"] == "acknowledged" and data["alert"]["id"] == "a1"
