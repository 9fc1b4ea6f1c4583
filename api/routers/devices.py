"""Devices the core is tracking, with their identifiers (what an allowlist entry matches)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from api.deps import ClockDep, CurrentUser, StoreDep, SupervisorUser
from api.problems import ApiProblem
from api.schemas import AlertOut, DeviceDetail, DeviceOut, DevicePage, Identifiers, SightingOut
from scanner.store.alerts import alerts_of_device
from scanner.store.allowlist import list_entries
from scanner.store.db import Store
from scanner.store.devices import find_devices, get_device
from scanner.store.sightings import device_sightings

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

# identifiers JSON key -> allowlist match kind
IDENTIFIER_KINDS = {"macs": "mac", "fingerprints": "fingerprint", "ble": "ble_identity"}
# The identities among them that name this device alone: what an alarm can add to the allowlist.
STABLE_KINDS = {"stable_macs": "mac", "stable_ble": "ble_identity"}


def device_identifiers(data: Any) -> Identifiers:
    """A device's identifiers, tolerant of missing keys and odd values."""
    if not isinstance(data, dict):
        data = {}
    clean: dict[str, list[str]] = {}
    for key in (*IDENTIFIER_KINDS, *STABLE_KINDS):
        values = data.get(key, [])
        clean[key] = [str(v) for v in values] if isinstance(values, list) else []
    return Identifiers(**clean)


def allowlisted_values(store: Store) -> set[tuple[str, str]]:
    """The (kind, value) of the entries that can exempt (never a flagged fingerprint)."""
    return {(e.match, e.value.lower()) for e in list_entries(store) if not e.flag}


def device_out(row: dict[str, Any], allowed: set[tuple[str, str]]) -> DeviceOut:
    ids = device_identifiers(row["identifiers"])
    listed = any(
        (kind, value.lower()) in allowed
        for key, kind in IDENTIFIER_KINDS.items()
        for value in getattr(ids, key)
    )
    return DeviceOut(
        id=row["id"],
        kind=row["kind"],
        vendor=row["vendor"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        radios=[str(r) for r in row["radios"]],
        identifiers=ids,
        evidence=list(row["evidence"]),
        last_rssi=row["last_rssi"],
        in_zone=bool(row["in_zone"]),
        ambient=bool(row["ambient"]),
        allowlisted=listed,
    )


@router.get("", response_model=DevicePage, summary="Tracked devices, most recently seen first")
def list_devices(
    store: StoreDep,
    _user: CurrentUser,
    in_zone: Annotated[
        bool | None, Query(description="only devices in (or out of) the zone")
    ] = None,
    since: Annotated[float | None, Query(ge=0, le=1e11, description="seen at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DevicePage:
    rows = find_devices(store, in_zone=in_zone, since=since, limit=limit + 1, offset=offset)
    allowed = allowlisted_values(store)
    return DevicePage(
        items=[device_out(r, allowed) for r in rows[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(rows) > limit else None,
    )


# A timeline is asked for one day by default; a week at most in one request.
TIMELINE_DEFAULT_S = 86400.0
TIMELINE_MAX_S = 7 * 86400.0
TIMELINE_MAX_ROWS = 5000


@router.get(
    "/{device_id}",
    response_model=DeviceDetail,
    summary="One device: its sightings over a period (its timeline) and the alerts it was behind",
    responses={404: {"description": "no such device"}, 400: {"description": "bad period"}},
)
def get_device_detail(
    device_id: Annotated[str, PathParam(min_length=1, max_length=128)],
    store: StoreDep,
    _user: SupervisorUser,
    clock: ClockDep,
    since: Annotated[
        float | None, Query(ge=0, le=1e11, description="default: a day before until")
    ] = None,
    until: Annotated[float | None, Query(ge=0, le=1e11, description="default: now")] = None,
) -> DeviceDetail:
    row = get_device(store, device_id)
    if row is None:
        raise ApiProblem(404, f"no device {device_id!r}", type_="not-found")
    end = clock() if until is None else until
    start = end - TIMELINE_DEFAULT_S if since is None else since
    if not start < end or end - start > TIMELINE_MAX_S:
        raise ApiProblem(
            400, "the period must start before it ends and span at most 7 days", type_="bad-period"
        )
    sightings = device_sightings(store, device_id, start, end, TIMELINE_MAX_ROWS + 1)
    return DeviceDetail(
        device=device_out(row, allowlisted_values(store)),
        since=start,
        until=end,
        sightings=[SightingOut.model_validate(s) for s in sightings[:TIMELINE_MAX_ROWS]],
        truncated=len(sightings) > TIMELINE_MAX_ROWS,
        alerts=[AlertOut.model_validate(a.to_dict()) for a in alerts_of_device(store, device_id)],
    )
