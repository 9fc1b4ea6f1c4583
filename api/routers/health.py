"""Sensor health: ``GET /healthz`` (no sign-in: for monitoring) and ``GET /api/v1/sensors``."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response

from api.deps import ClockDep, CurrentUser, SettingsDep, StoreDep
from api.schemas import DiskHealth, Healthz, SensorOut, StoreHealth
from api.settings import ApiSettings
from scanner import __version__
from scanner.store.db import Store
from scanner.store.health import list_sensors

_LOGGER = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

_STATUSES = {"ok", "starting", "degraded", "fault", "stopped"}


def sensor_out(raw: dict[str, Any], now: float, stale_s: float) -> SensorOut:
    age = max(0.0, now - float(raw["updated_ts"]))
    state = str(raw["state"])
    status = state if state in _STATUSES else "degraded"
    if stale_s > 0 and age > stale_s and status != "stopped":
        # The daemon stopped reporting: whatever it said last is no longer known to be true.
        status = "silent"
    return SensorOut(
        sensor=raw["sensor"],
        radio=raw["radio"],
        state=state,
        status=status,  # type: ignore[arg-type]
        message=raw["message"],
        updated_ts=raw["updated_ts"],
        last_obs_ts=raw["last_obs_ts"],
        age_s=round(age, 3),
        counters=raw["counters"] if isinstance(raw["counters"], dict) else {},
        detail=raw["detail"] if isinstance(raw["detail"], dict) else {},
    )


def sensors_now(store: Store, settings: ApiSettings, now: float) -> list[SensorOut]:
    return [sensor_out(s, now, settings.sensor_stale_s) for s in list_sensors(store)]


def _disk(path: str) -> DiskHealth | None:
    target = Path(path).parent if path != ":memory:" else Path()
    try:
        usage = shutil.disk_usage(target)
    except OSError:
        return None
    return DiskHealth(
        path=str(target),
        total_bytes=usage.total,
        free_bytes=usage.free,
        used_fraction=round(usage.used / usage.total, 4) if usage.total else 0.0,
    )


@router.get(
    "/healthz",
    response_model=Healthz,
    summary="Appliance health for monitoring: store, disk and every sensor (no sign-in)",
    responses={503: {"model": Healthz, "description": "the store cannot be read"}},
)
def healthz(store: StoreDep, settings: SettingsDep, clock: ClockDep, response: Response) -> Healthz:
    now = clock()
    sensors: list[SensorOut] = []
    try:
        version = int(store.query("PRAGMA user_version")[0][0])
        sensors = sensors_now(store, settings, now)
        store_health = StoreHealth(ok=True, schema_version=version)
    except Exception as exc:  # any store failure is what this endpoint reports
        _LOGGER.warning("health check cannot read the store: %s", exc)
        store_health = StoreHealth(ok=False, error=str(exc))
    if not store_health.ok:
        status = "fault"
        response.status_code = 503
    elif all(s.status == "ok" for s in sensors):
        status = "ok"
    else:
        status = "degraded"
    return Healthz(
        status=status,  # type: ignore[arg-type]
        version=__version__,
        time=now,
        store=store_health,
        disk=_disk(settings.store_path),
        sensors={s.sensor: s for s in sensors},
    )


@router.get(
    "/api/v1/sensors",
    response_model=list[SensorOut],
    summary="Health of every sensor",
    tags=["sensors"],
)
def sensors(
    store: StoreDep, settings: SettingsDep, clock: ClockDep, _user: CurrentUser
) -> list[SensorOut]:
    return sensors_now(store, settings, clock())
