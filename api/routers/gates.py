"""The command post's view of every gate (``[api] mode = "command-post"`` only).

The gates' cores publish their alerts and health over the site's MQTT broker; the command post
keeps them in its own store (``scanner.store.gates``) and sends acknowledgements back to the
gate an alert belongs to, where they are recorded and audited as a tablet's would be.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.deps import ClockDep, CurrentUser, StoreDep
from api.problems import ApiProblem
from api.schemas import AckRequest, GateAckOut, GateAlertOut, GateOut, GatesOut
from scanner.mqtt.command_post import CommandPost
from scanner.store import audit
from scanner.store import gates as gate_store

router = APIRouter(prefix="/api/v1/gates", tags=["command post"])

Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^/+#]+$")]
AlertId = Annotated[str, Path(min_length=1, max_length=128)]
# The page shows today's alerts: a day is under 86,400 s; the bound keeps absurd values out.
Since = Annotated[float | None, Query(ge=0, le=1e11)]
# A site has tens of gates, each a few alerts an hour at most.
MAX_ALERTS = 500


def _command_post(request: Request) -> CommandPost:
    link = getattr(request.app.state, "command_post", None)
    if not isinstance(link, CommandPost):
        raise ApiProblem(503, "the command post's broker link is not running", type_="unavailable")
    return link


@router.get("", response_model=GatesOut, summary="Every gate: its state, alarms and acks")
def list_gates(
    request: Request, store: StoreDep, _user: CurrentUser, clock: ClockDep, since: Since = None
) -> GatesOut:
    link = _command_post(request)
    now = clock()
    seen: dict[str, GateAlertOut] = {}
    for group in (
        gate_store.list_gate_alerts(store, state="open", limit=MAX_ALERTS),
        gate_store.list_gate_alerts(store, acknowledged=False, limit=MAX_ALERTS),
        gate_store.list_gate_alerts(store, since=since, limit=MAX_ALERTS)
        if since is not None
        else [],
    ):
        for alert in group:
            seen.setdefault(alert.key, GateAlertOut.model_validate(alert.to_dict()))
    return GatesOut(
        command_post=link.name,
        broker_connected=link.connected,
        gates=[GateOut.model_validate(g.to_dict()) for g in gate_store.list_gates(store, now)],
        alerts=sorted(seen.values(), key=lambda a: a.raised_ts, reverse=True),
    )


@router.post(
    "/{site}/{gate}/alerts/{alert_id}/ack",
    response_model=GateAckOut,
    summary="Acknowledge a gate's alert from the command post (sent to the gate)",
    responses={404: {"description": "no such alert at that gate"}},
)
def acknowledge(
    request: Request,
    site: Name,
    gate: Name,
    alert_id: AlertId,
    body: AckRequest,
    store: StoreDep,
    user: CurrentUser,
    clock: ClockDep,
) -> GateAckOut:
    link = _command_post(request)
    ts = clock()
    try:
        gate_store.get_gate_alert(store, site, gate, alert_id)
    except gate_store.GateAlertNotFoundError:
        raise ApiProblem(
            404, f"no alert {alert_id!r} at {site}/{gate}", type_="not-found"
        ) from None
    delivered = link.acknowledge(site, gate, alert_id, user.username, body.note)
    alert = gate_store.mark_ack_sent(store, site, gate, alert_id, ts, user.username)
    audit.record(
        store,
        ts,
        user.username,
        "gate.alert.ack",
        {"site": site, "gate": gate, "alert_id": alert_id, "note": body.note},
    )
    return GateAckOut(alert=GateAlertOut.model_validate(alert.to_dict()), delivered=delivered)
