"""The live feed over a real socket: ids, retry, heartbeats, and replay after a disconnect."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from scanner.observations import Radio, SensorState, SensorStatus
from scanner.store import alerts as alert_store
from scanner.store.db import Store
from scanner.store.health import record_status
from tests.api.api_helpers import LiveServer, live_login, make_alert


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse an event stream into dicts with id/event/data, plus comments and retry."""
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if current:
                yield current
            current = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            current[name] = value[1:] if value.startswith(" ") else value


def _read(
    events: Iterator[dict[str, Any]], want: int, timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """Read until ``want`` data events (not hello) arrived; returns everything read."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    for item in events:
        got.append(item)
        if sum(1 for g in got if g.get("event") not in (None, "hello", "heartbeat")) >= want:
            return got
        assert time.monotonic() < deadline, f"only {got} within {timeout_s} s"
    raise AssertionError("stream ended")


def test_stream_sends_retry_heartbeats_and_live_events(live: LiveServer, store: Store) -> None:
    client = live_login(live.url, "guard")
    with client.stream("GET", "/api/v1/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        alert_store.raise_alert(store, make_alert("live1", time.time(), reasons=["<b>SSID</b>"]))
        events = _events(stream.iter_lines())
        got = _read(events, 1)
        # A heartbeat arrives while nothing happens: an event the page sees, not a comment.
        more = []
        for item in events:
            more.append(item)
            if item.get("event") == "heartbeat":
                break
    assert got[0].get("retry") == "500"
    hello = next(g for g in got if g.get("event") == "hello")
    alert = next(g for g in got if g.get("event") == "alert")
    assert int(alert["id"]) > int(hello["id"])
    payload = json.loads(alert["data"])
    assert payload["data"]["alert"]["reasons"] == ["<b>SSID</b>"]
    assert payload["id"] == int(alert["id"])
    beat = more[-1]
    assert beat.get("event") == "heartbeat" and "id" not in beat


def test_resume_with_last_event_id_delivers_every_missed_event(
    live: LiveServer, store: Store
) -> None:
    client = live_login(live.url, "guard")
    t0 = time.time()
    with client.stream("GET", "/api/v1/events") as stream:
        alert_store.raise_alert(store, make_alert("before", t0))
        seen = [g for g in _read(_events(stream.iter_lines()), 1) if g.get("event") == "alert"]
    last_id = int(seen[-1]["id"])

    # While the tablet is away: new alerts, an acknowledgement, a resolution, a sensor fault.
    missed_ids = [alert_store.raise_alert(store, make_alert(f"m{i}", t0 + i)) for i in range(5)]
    alert_store.acknowledge_alert(store, "m1", t0 + 6, "other-guard")
    missed_ids.append(store.last_event_id())
    missed_ids.append(alert_store.resolve_alert(store, "m2", t0 + 7, "left_zone", 7.0))
    record_status(
        store, SensorStatus(t0 + 8, 0.0, "ble", Radio.BLE, SensorState.FAULT, "adapter gone")
    )
    missed_ids.append(store.last_event_id())

    # Reconnect the way EventSource does: the Last-Event-ID header.
    with client.stream("GET", "/api/v1/events", headers={"Last-Event-ID": str(last_id)}) as stream:
        replay = [
            g
            for g in _read(_events(stream.iter_lines()), len(missed_ids))
            if g.get("event") not in (None, "hello", "heartbeat")
        ]
    assert [int(g["id"]) for g in replay] == missed_ids
    kinds = [(g["event"], json.loads(g["data"])["data"].get("event")) for g in replay]
    assert kinds == [("alert", "raised")] * 5 + [
        ("alert", "acknowledged"),
        ("alert", "resolved"),
        ("health", None),
    ]

    # The query parameter does the same (for clients that cannot set headers).
    with client.stream("GET", f"/api/v1/events?last_event_id={missed_ids[4]}") as stream:
        tail = [
            g
            for g in _read(_events(stream.iter_lines()), 3)
            if g.get("event") not in (None, "hello", "heartbeat")
        ]
    assert [int(g["id"]) for g in tail] == missed_ids[5:]


def test_a_long_outage_replays_in_batches(live: LiveServer, store: Store) -> None:
    start = store.last_event_id()
    t0 = time.time()
    for i in range(1200):  # more than one replay batch
        with store.write() as conn:
            store.add_event(conn, t0 + i, "health", {"n": i})
    client = live_login(live.url, "guard")
    with client.stream("GET", f"/api/v1/events?last_event_id={start}") as stream:
        got = [
            g
            for g in _read(_events(stream.iter_lines()), 1200, timeout_s=30)
            if g.get("event") == "health"
        ]
    assert [json.loads(g["data"])["data"]["n"] for g in got] == list(range(1200))


def test_signing_out_ends_the_live_feed(live: LiveServer) -> None:
    client = live_login(live.url, "guard")
    other = live_login(live.url, "guard")
    with client.stream("GET", "/api/v1/events") as stream:
        events = _events(stream.iter_lines())
        next(e for e in events if e.get("event") == "hello")
        # The same session signed out elsewhere (same cookie): the stream must end.
        other.cookies = client.cookies
        assert other.delete("/api/v1/session").status_code == 204
        deadline = time.monotonic() + 5
        for _ in events:
            assert time.monotonic() < deadline, "the stream outlived its session"
    assert client.get("/api/v1/alerts").status_code == 401
