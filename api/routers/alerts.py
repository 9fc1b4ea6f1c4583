"""Alerts: list and filter, one alert with its history, acknowledge with a note."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import ClockDep, CurrentUser, NotifyDep, StoreDep
from api.problems import ApiProblem
from api.schemas import AckRequest, AlertDetail, AlertOut, AlertPage, HistoryEntryOut
from scanner.store import alerts as alert_store
from scanner.store import audit
from scanner.store.alerts import AlertNotFoundError

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

AlertId = Annotated[str, Path(min_length=1, max_length=128)]
# Unix seconds; the bounds keep absurd values out of SQLite's float comparisons.
Ts = Annotated[float | None, Query(ge=0, le=1e11)]


def alert_out(record: alert_store.AlertRecord) -> AlertOut:
    return AlertOut.model_validate(record.to_dict())


@router.get("", response_model=AlertPage, summary="Alerts, newest first")
def list_alerts(
    store: StoreDep,
    _user: CurrentUser,
    state: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    since: Ts = None,
    until: Ts = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    acknowledged: Annotated[
        bool | None,
        Query(description="false: the alarms still latched on the tablet, open or resolved"),
    ] = None,
) -> AlertPage:
    rows = alert_store.list_alerts(
        store,
        state=state,
        since=since,
        until=until,
        limit=limit + 1,
        offset=offset,
        acknowledged=acknowledged,
    )
    return AlertPage(
        items=[alert_out(r) for r in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(rows) > limit else None,
    )


@router.get(
    "/{alert_id}",
    response_model=AlertDetail,
    summary="One alert and its history",
    responses={404: {"description": "no such alert"}},
)
def get_alert(alert_id: AlertId, store: StoreDep, _user: CurrentUser) -> AlertDetail:
    try:
        record = alert_store.get_alert(store, alert_id)
    except AlertNotFoundError:
        raise ApiProblem(404, f"no alert {alert_id!r}", type_="not-found") from None
    history = [
        HistoryEntryOut.model_validate(h) for h in alert_store.alert_history(store, alert_id)
    ]
    return AlertDetail(alert=alert_out(record), history=history)


@router.post(
    "/{alert_id}/ack",
    response_model=AlertOut,
    summary="Acknowledge an alert, open or already resolved (the first acknowledgement is kept)",
    responses={404: {"description": "no such alert"}},
)
def acknowledge(
    alert_id: AlertId,
    body: AckRequest,
    store: StoreDep,
    user: CurrentUser,
    clock: ClockDep,
    notify: NotifyDep,
) -> AlertOut:
    ts = clock()
    try:
        record = alert_store.acknowledge_alert(store, alert_id, ts, user.username, body.note)
    except AlertNotFoundError:
        raise ApiProblem(404, f"no alert {alert_id!r}", type_="not-found") from None
    audit.record(store, ts, user.username, "alert.ack", {"alert_id": alert_id, "note": body.note})
    # A phone heard after this moment is a new alarm, not part of the acknowledged alert: the
    # core learns of it now rather than at its next poll of the store.
    notify("ack")
    return alert_out(record)
