"""The zone: its name and presence calibration (read by anyone, changed by a supervisor).

Stored in the ``zone`` setting as ``{"name", "calibration": {...}, "updated_ts", "updated_by"}``
with ``zone_version`` bumped on every change, the same way the allowlist tells the core to
re-read it; a ``zone`` live event tells the tablets.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ClockDep, CurrentUser, SettingsDep, StoreDep, SupervisorUser
from api.schemas import ZoneIn, ZoneOut
from scanner.store.chain import append_audit
from scanner.store.db import Store

router = APIRouter(prefix="/api/v1/zone", tags=["zone"])

ZONE_KEY = "zone"
ZONE_VERSION_KEY = "zone_version"


def read_zone(store: Store, default_name: str) -> ZoneOut:
    raw: Any = store.get_setting(ZONE_KEY, {})
    if not isinstance(raw, dict):
        raw = {}
    calibration = raw.get("calibration", {})
    return ZoneOut(
        name=str(raw.get("name") or default_name),
        calibration=calibration if isinstance(calibration, dict) else {},
        version=int(store.get_setting(ZONE_VERSION_KEY, 0)),
        updated_ts=raw.get("updated_ts"),
        updated_by=raw.get("updated_by"),
    )


@router.get("", response_model=ZoneOut, summary="The zone's name and calibration")
def get_zone(store: StoreDep, settings: SettingsDep, _user: CurrentUser) -> ZoneOut:
    return read_zone(store, settings.site_name)


@router.put("", response_model=ZoneOut, summary="Set the zone's name and calibration")
def put_zone(
    body: ZoneIn, store: StoreDep, settings: SettingsDep, user: SupervisorUser, clock: ClockDep
) -> ZoneOut:
    ts = clock()
    value = {
        "name": body.name,
        "calibration": body.calibration.model_dump(exclude_none=True),
        "updated_ts": ts,
        "updated_by": user.username,
    }
    with store.write(durable=True) as conn:
        version = int(store.get_setting(ZONE_VERSION_KEY, 0)) + 1
        store.set_setting(conn, ZONE_KEY, value)
        store.set_setting(conn, ZONE_VERSION_KEY, version)
        append_audit(conn, ts, user.username, "zone.update", value)
        store.add_event(conn, ts, "zone", {"version": version, "name": body.name})
    return read_zone(store, settings.site_name)
