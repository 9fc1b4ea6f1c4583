"""The zone: its name and presence calibration (read by anyone, changed by a supervisor).

The name lives in the ``zone`` setting. The measured levels go to ``zone_calibration`` as
``{radio: {"sensor", "boundary_dbm", "inside_dbm"}}``, which the core re-reads and turns into
its thresholds (``scanner.core.presence.Calibration``); the walk's raw readings are kept
beside them in ``zone`` for the record. A ``zone`` live event tells the tablets.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ClockDep, CurrentUser, SettingsDep, StoreDep, SupervisorUser
from api.schemas import RadioCalibrationOut, ZoneIn, ZoneOut
from scanner.core.presence import calibrations_from_setting
from scanner.store.chain import append_audit
from scanner.store.db import Store

router = APIRouter(prefix="/api/v1/zone", tags=["zone"])

ZONE_KEY = "zone"
CALIBRATION_KEY = "zone_calibration"
ZONE_VERSION_KEY = "zone_version"


def read_zone(store: Store, default_name: str) -> ZoneOut:
    raw: Any = store.get_setting(ZONE_KEY, {})
    if not isinstance(raw, dict):
        raw = {}
    samples: Any = raw.get("samples", {})
    if not isinstance(samples, dict):
        samples = {}
    calibration: dict[str, RadioCalibrationOut] = {}
    # Parsed by the core's own function, so the page shows exactly what the core will use.
    for radio, cal in calibrations_from_setting(store.get_setting(CALIBRATION_KEY)).items():
        th = cal.thresholds()
        walk = samples.get(radio, {}) if isinstance(samples.get(radio), dict) else {}
        calibration[radio] = RadioCalibrationOut(
            boundary_dbm=cal.boundary_dbm,
            inside_dbm=cal.inside_dbm,
            enter_dbm=th.enter_dbm,
            exit_dbm=th.exit_dbm,
            boundary_samples=[float(x) for x in walk.get("boundary", []) if _number(x)],
            inside_samples=[float(x) for x in walk.get("inside", []) if _number(x)],
        )
    return ZoneOut(
        name=str(raw.get("name") or default_name),
        calibration=calibration,
        version=int(store.get_setting(ZONE_VERSION_KEY, 0)),
        updated_ts=raw.get("updated_ts") if _number(raw.get("updated_ts")) else None,
        updated_by=str(raw["updated_by"]) if raw.get("updated_by") else None,
    )


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


@router.get("", response_model=ZoneOut, summary="The zone's name and calibration")
def get_zone(store: StoreDep, settings: SettingsDep, _user: CurrentUser) -> ZoneOut:
    return read_zone(store, settings.site_name)


@router.put(
    "",
    response_model=ZoneOut,
    summary="Set the zone's name and the levels measured on the calibration walk",
)
def put_zone(
    body: ZoneIn, store: StoreDep, settings: SettingsDep, user: SupervisorUser, clock: ClockDep
) -> ZoneOut:
    ts = clock()
    calibration = {
        radio: {"sensor": radio, "boundary_dbm": c.boundary_dbm, "inside_dbm": c.inside_dbm}
        for radio, c in body.calibration.items()
    }
    value = {
        "name": body.name,
        "samples": {
            radio: {"boundary": c.boundary_samples, "inside": c.inside_samples}
            for radio, c in body.calibration.items()
        },
        "updated_ts": ts,
        "updated_by": user.username,
    }
    with store.write(durable=True) as conn:
        version = int(store.get_setting(ZONE_VERSION_KEY, 0)) + 1
        store.set_setting(conn, ZONE_KEY, value)
        store.set_setting(conn, CALIBRATION_KEY, calibration)
        store.set_setting(conn, ZONE_VERSION_KEY, version)
        append_audit(
            conn, ts, user.username, "zone.update", {"name": body.name, "calibration": calibration}
        )
        store.add_event(conn, ts, "zone", {"version": version, "name": body.name})
    return read_zone(store, settings.site_name)
