"""``GET /api/v1/events``: the live feed as Server-Sent Events.

The stream tails the store's ``events`` table, whose row id is the SSE ``id``. It reads the table
when the core says it committed rows there (``api.feed``), and every ``event_poll_s`` whatever it
hears, so a word that was lost costs one poll period. A tablet that
reconnects sends ``Last-Event-ID`` (the browser does it by itself) or ``?last_event_id=`` and
receives every event after that one, in order, before anything new: nothing is missed while
its Wi-Fi was down. Because the table is the channel, the core may run in another process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.deps import ClockDep, CurrentUser, FeedDep, SettingsDep, StoreDep
from api.feed import LiveFeed
from api.problems import ApiProblem
from scanner.store.db import Store
from scanner.store.kiosk import kiosk_by_id
from scanner.store.sessions import session_user, token_user

_LOGGER = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/events", tags=["events"])

# Rows read per query while catching up; a long outage replays in batches of this size.
_BATCH = 500

_SSE_DOC = (
    "A `text/event-stream`. Each event has `id:` (the feed position), `event:` (`alert`, "
    "`health`, `allowlist`, `zone`, `gate` (a command post's gates), or `hello` first, "
    "whose `mode` is `gate` or `command-post`) and `data:` (JSON: `{id, ts, type, data}`). "
    "Every `heartbeat_s` (in `hello`) a `heartbeat` event without `id:` carries the server time: "
    "a client that misses several must treat what it shows as stale. The session is re-checked "
    "on the same beat; an ended one ends the stream. A `Last-Event-ID` longer than an event id "
    "is a 400."
)


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


def format_event(event_id: int, type_: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    # ensure_ascii keeps the payload on one line whatever an SSID contains.
    return f"id: {event_id}\nevent: {type_}\ndata: {data}\n\n".encode()


# An event id is a SQLite row id: at most 19 digits. Anything longer is not a position in
# this feed, and is refused before the stream starts (a 400, not an error inside the stream).
_MAX_ID_DIGITS = 19
_MAX_ID = 2**62


def _parse_last_id(header: str | None, query: int | None) -> int | None:
    if query is not None:
        return query
    if header is None or header.strip() == "":
        return None
    text = header.strip()
    if len(text) > _MAX_ID_DIGITS + 1:
        raise ApiProblem(400, "Last-Event-ID is too long to be an event id", type_="bad-request")
    try:
        value = int(text)
    except ValueError:
        raise ApiProblem(
            422, "Last-Event-ID must be an event id (an integer)", type_="validation"
        ) from None
    if value < 0:
        raise ApiProblem(422, "Last-Event-ID must not be negative", type_="validation")
    if value > _MAX_ID:
        raise ApiProblem(400, "Last-Event-ID is beyond any event id", type_="bad-request")
    return value


def heartbeat_event(now: float, last: int) -> bytes:
    """The data heartbeat: an event the page's watchdog sees (a comment never reaches it).

    It carries no ``id:`` so it does not move the browser's Last-Event-ID.
    """
    data = json.dumps({"type": "heartbeat", "ts": now, "last_event_id": last})
    return f"event: heartbeat\ndata: {data}\n\n".encode()


async def _stream(
    still_allowed: Callable[[], bool],
    clock: Callable[[], float],
    store: Store,
    start_after: int,
    poll_s: float,
    heartbeat_s: float,
    retry_ms: int,
    mode: str = "gate",
    feed: LiveFeed | None = None,
) -> AsyncIterator[bytes]:
    last = start_after
    yield f"retry: {retry_ms}\n\n".encode()
    # ``mode``: a command post's page adds its gates (``command-post``); a gate's does not.
    hello = {"last_event_id": last, "heartbeat_s": heartbeat_s, "mode": mode}
    yield format_event(last, "hello", {"id": last, "type": "hello", "data": hello})
    loop = asyncio.get_running_loop()
    next_beat = loop.time() + heartbeat_s
    feed = feed if feed is not None else LiveFeed()
    while True:
        # Noted before the read: a word that comes while reading wakes the next wait at once.
        seen = feed.mark()
        batch = await anyio.to_thread.run_sync(store.events_after, last, _BATCH)
        for event in batch:
            last = int(event["id"])
            yield format_event(last, str(event["type"]), event)
        if len(batch) == _BATCH:
            continue  # still catching up: no pause
        if loop.time() >= next_beat:
            next_beat = loop.time() + heartbeat_s
            # On the heartbeat's beat whether or not events flow: a signed-out, expired,
            # disabled or revoked principal loses its live feed within one beat.
            if not await anyio.to_thread.run_sync(still_allowed):
                return
            yield heartbeat_event(clock(), last)
        await feed.wait(seen, poll_s)


@router.get(
    "",
    response_class=EventStreamResponse,
    summary="Live events (SSE) with replay from Last-Event-ID",
    description=_SSE_DOC,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        400: {"description": "Last-Event-ID is longer or larger than any event id"},
    },
)
async def events(
    store: StoreDep,
    settings: SettingsDep,
    user: CurrentUser,
    clock: ClockDep,
    feed: FeedDep,
    last_event_id_header: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="resume after this event id"),
    ] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, le=2**62, description="resume after this event id")
    ] = None,
) -> EventStreamResponse:
    start = _parse_last_id(last_event_id_header, last_event_id)
    if start is None:
        # A fresh connection starts at the present; the page loads the current state by REST.
        start = await anyio.to_thread.run_sync(store.last_event_id)

    def still_allowed() -> bool:
        if user.session_token is not None:
            return session_user(store, user.session_token, clock()) is not None
        if user.kiosk_id is not None:
            return kiosk_by_id(store, user.kiosk_id) is not None
        return user.api_token is not None and token_user(store, user.api_token) is not None

    return EventStreamResponse(
        _stream(
            still_allowed,
            clock,
            store,
            start,
            settings.event_poll_s,
            settings.heartbeat_s,
            settings.sse_retry_ms,
            settings.mode,
            feed,
        ),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
