"""An alert transition as the outward sinks name it: the fields of a FORMATS.md alert line.

The NDJSON alert lines (``replay --alerts``, ``eval``) are these fields, ``ts`` rounded to the
millisecond; the MQTT alert messages are these fields and what a command post's card shows
besides (title, when raised, how long, acknowledged), so a line and a message of the same
event never disagree on what happened.
"""

from __future__ import annotations

from typing import Any

from scanner.core.events import AlertAcknowledged, AlertRaised, AlertResolved, AlertUpdated

AlertTransition = AlertRaised | AlertUpdated | AlertAcknowledged | AlertResolved
ALERT_TRANSITIONS = (AlertRaised, AlertUpdated, AlertAcknowledged, AlertResolved)


def alert_fields(event: AlertTransition) -> dict[str, Any]:
    """``ts``, ``alert_id``, ``event``, ``alarm``, ``kind``, ``handsets``, ``sensors``,
    ``confidence``, ``reasons`` (in that order), then ``by`` on an acknowledgement and
    ``resolution`` on a resolution. ``alarm`` is whether the tablet alarms because of it."""
    if isinstance(event, AlertRaised):
        name, alarm = "raised", event.alarm
    elif isinstance(event, AlertUpdated):
        name, alarm = "updated", event.alarm
    elif isinstance(event, AlertAcknowledged):
        name, alarm = "acknowledged", False
    else:
        name, alarm = "resolved", False
    alert = event.alert
    fields: dict[str, Any] = {
        "ts": event.ts,
        "alert_id": alert.id,
        "event": name,
        "alarm": alarm,
        "kind": alert.kind,
        "handsets": alert.handsets,
        "sensors": list(alert.sensors),
        "confidence": alert.confidence,
        "reasons": list(alert.reasons),
    }
    if isinstance(event, AlertAcknowledged):
        fields["by"] = event.by
    elif isinstance(event, AlertResolved):
        fields["resolution"] = event.resolution
    return fields
