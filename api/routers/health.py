"""Sensor health: ``GET /healthz`` (no sign-in: for monitoring) and ``GET /api/v1/sensors``."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from pydantic import ValidationError

from api.deps import ClockDep, CurrentUser, SettingsDep, StoreDep
from api.schemas import (
    DiskHealth,
    Healthz,
    OverallStatus,
    RuntimeProcess,
    SensorHealthStatus,
    SensorOut,
    StoreHealth,
)
from api.settings import ApiSettings
from scanner import __version__
from scanner.observations import SensorState
from scanner.runtime.serve import RUNTIME_HEALTH_KEY
from scanner.store.db import Store
from scanner.store.health import list_sensors

_LOGGER = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

_STATUSES = {str(s) for s in SensorState}


# The core's input queue counts its drops per sensor under this name in the sensor's counters.
CORE_QUEUE_DROPS = "core_dropped_queue_full"
# Component states that mean a part of a running process is down.
_DOWN = {"restarting", "failed"}


def _is_drop(key: str, value: object) -> bool:
    # "dropped_core_down" is the share of "dropped_buffer_full" lost while the core was down:
    # counted once, under the larger counter.
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and key.startswith(("dropped_", "transport_dropped_", CORE_QUEUE_DROPS))
        and not key.endswith("_core_down")
    )


def sensor_out(raw: dict[str, Any], now: float, stale_s: float, core_drops: int = 0) -> SensorOut:
    age = max(0.0, now - float(raw["updated_ts"]))
    state = str(raw["state"])
    status = state if state in _STATUSES else "degraded"
    if stale_s > 0 and age > stale_s and status != "stopped":
        # The daemon stopped reporting: whatever it said last is no longer known to be true.
        status = "silent"
    counters = dict(raw["counters"]) if isinstance(raw["counters"], dict) else {}
    if core_drops:
        counters[CORE_QUEUE_DROPS] = core_drops
    return SensorOut(
        sensor=raw["sensor"],
        radio=raw["radio"],
        state=state,
        status=SensorHealthStatus(status),
        message=raw["message"],
        updated_ts=raw["updated_ts"],
        last_obs_ts=raw["last_obs_ts"],
        age_s=round(age, 3),
        dropped=sum(v for k, v in counters.items() if _is_drop(k, v)),
        counters=counters,
        detail=raw["detail"] if isinstance(raw["detail"], dict) else {},
    )


def runtime_now(store: Store, now: float, stale_s: float) -> dict[str, RuntimeProcess]:
    """Each process's component health as the runner last wrote it, with its age."""
    raw = store.get_setting(RUNTIME_HEALTH_KEY, {})
    out: dict[str, RuntimeProcess] = {}
    if not isinstance(raw, dict):
        return out
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            continue
        updated = entry.get("updated_ts")
        age = max(0.0, now - updated) if isinstance(updated, int | float) else None
        # Every process rewrites its entry at least every 30 s; one that has not for as long
        # as a sensor may stay quiet has stopped (or was killed), and its numbers are history.
        stale = age is None or (stale_s > 0 and age > stale_s)
        try:
            out[str(name)] = RuntimeProcess.model_validate(
                {**entry, "age_s": None if age is None else round(age, 3), "stale": stale}
            )
        except ValidationError:
            _LOGGER.debug("runtime health of %s is not readable", name)
    return out


def _core_queue_drops(runtime: dict[str, RuntimeProcess]) -> Counter[str]:
    drops: Counter[str] = Counter()
    for proc in runtime.values():
        queue = (proc.model_extra or {}).get("queue")
        if proc.stale or not isinstance(queue, dict):
            continue
        by_sensor = queue.get("dropped_by_sensor")
        if isinstance(by_sensor, dict):
            for sensor, n in by_sensor.items():
                if isinstance(n, int):
                    drops[str(sensor)] += n
    return drops


def _runtime_trouble(runtime: dict[str, RuntimeProcess]) -> bool:
    """A part of a running process is down, or the store's retention is failing."""
    for proc in runtime.values():
        if proc.stale:
            continue
        if any(c.get("state") in _DOWN for c in proc.components.values()):
            return True
        retention = (proc.model_extra or {}).get("retention")
        if isinstance(retention, dict) and retention.get("state") == "error":
            return True
    return False


def sensors_now(
    store: Store,
    settings: ApiSettings,
    now: float,
    runtime: dict[str, RuntimeProcess] | None = None,
) -> list[SensorOut]:
    if runtime is None:
        runtime = runtime_now(store, now, settings.sensor_stale_s)
    drops = _core_queue_drops(runtime)
    return [
        sensor_out(s, now, settings.sensor_stale_s, drops.get(s["sensor"], 0))
        for s in list_sensors(store)
    ]


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
    runtime: dict[str, RuntimeProcess] = {}
    try:
        version = store.schema_version()
        runtime = runtime_now(store, now, settings.sensor_stale_s)
        sensors = sensors_now(store, settings, now, runtime)
        store_health = StoreHealth(ok=True, schema_version=version)
    except Exception as exc:  # any store failure is what this endpoint reports
        _LOGGER.warning("health check cannot read the store: %s", exc)
        store_health = StoreHealth(ok=False, error=str(exc))
    if not store_health.ok:
        status = "fault"
        response.status_code = 503
    elif all(s.status == "ok" for s in sensors) and not _runtime_trouble(runtime):
        status = "ok"
    else:
        status = "degraded"
    return Healthz(
        status=OverallStatus(status),
        version=__version__,
        time=now,
        store=store_health,
        disk=_disk(settings.store_path),
        sensors={s.sensor: s for s in sensors},
        runtime=runtime,
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
