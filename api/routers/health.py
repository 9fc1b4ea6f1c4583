"""Appliance health: ``GET /healthz`` (no sign-in, status only), ``GET /api/v1/health`` (the
details: paths, disk sizes, counters, runtime, and the reasons in words) and
``GET /api/v1/sensors``.

Degraded is never reported as ok: a sensor that is not reporting, a process (the core above
all) that stopped writing its health, a store that cannot be read or a nearly full disk each
make the status ``degraded`` (``fault`` for the store) with a reason a guard can read.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, ValidationError

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
from scanner.runtime.components.retention import DEFAULT_EVERY_S as RETENTION_EVERY_S
from scanner.runtime.serve import HEALTH_EVERY_S, RUNTIME_HEALTH_KEY
from scanner.store.db import Store
from scanner.store.health import list_sensors
from scanner.store.integrity import DISK_FULL, IntegrityResult, describe, read_state
from scanner.store.retention import STORE_SENSOR

_LOGGER = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

_STATUSES = {str(s) for s in SensorState}


# The core's input queue counts its drops per sensor under this name in the sensor's counters.
CORE_QUEUE_DROPS = "core_dropped_queue_full"
# Component states that mean a part of a running process is down.
_DOWN = {"restarting", "failed"}
# Every process rewrites its runtime health at least every HEALTH_EVERY_S; three missed writes
# (plus a second for a slow SD card) means it is gone, and with it whatever it ran.
RUNTIME_STALE_S = 3 * HEALTH_EVERY_S + 1.0
# The store's health row is written once per retention run; three missed runs is a dead task.
_STORE_MISSED_RUNS = 3
# Below this much free space the next WAL frame or journal page cannot be written: SQLite
# fails every write with SQLITE_FULL. A few pages of a 4 KiB-page database, rounded up.
DISK_FULL_BYTES = 1024 * 1024
# Below this much free space SQLite's WAL checkpoint or a large delete's journal can fail with
# "database or disk is full", and the core stops recording alerts: warn well before. The
# floor is in bytes for large cards, the fraction for small ones.
DISK_MIN_FREE_BYTES = 64 * 1024 * 1024
DISK_MIN_FREE_FRACTION = 0.05
RADIO_WORDS = {"wifi": "Wi-Fi", "ble": "Bluetooth", "sdr": "Cellular", "store": "Store"}


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


def runtime_now(
    store: Store, now: float, stale_s: float = RUNTIME_STALE_S
) -> dict[str, RuntimeProcess]:
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
        # A process that has missed its writes has stopped (or was killed): its numbers are
        # history, and _runtime_problems says whether that leaves the gate unwatched.
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


def _stopped_cleanly(proc: RuntimeProcess) -> bool:
    # The runner's last write on the way out has every component stopped.
    return all(c.get("state") == "stopped" for c in proc.components.values())


def _runtime_problems(runtime: dict[str, RuntimeProcess]) -> list[str]:
    """Why the processes are not all well, in words; empty when they are."""
    problems: list[str] = []
    core_fresh = any(not p.stale and "core" in p.components for p in runtime.values())
    core_known = any("core" in p.components for p in runtime.values())
    for name, proc in sorted(runtime.items()):
        if proc.stale:
            if not _stopped_cleanly(proc):
                age = "never" if proc.age_s is None else f"{proc.age_s:.0f} s ago"
                problems.append(f"process {name} stopped reporting (last {age})")
            continue
        for part, comp in sorted(proc.components.items()):
            if comp.get("state") in _DOWN:
                problems.append(f"{name}: {part} is {comp.get('state')}")
        retention = (proc.model_extra or {}).get("retention")
        if isinstance(retention, dict) and retention.get("state") == "error":
            problems.append("store retention is failing")
    if core_known and not core_fresh:
        problems.insert(0, "the detection core is not running")
    return problems


def _sensor_problems(sensors: list[SensorOut], runtime: dict[str, RuntimeProcess]) -> list[str]:
    problems: list[str] = []
    for s in sensors:
        if s.status == "ok":
            continue
        what = RADIO_WORDS.get(s.radio, s.radio)
        name = what if s.sensor == s.radio else f"{what} ({s.sensor})"
        if s.status == "silent":
            problems.append(f"{name}: not reporting for {s.age_s:.0f} s")
        else:
            problems.append(
                f"{name}: {s.status}, {s.message}" if s.message else f"{name}: {s.status}"
            )
    reported = {s.sensor for s in sensors}
    # A running process with a capture component for a radio that never reported.
    for proc in runtime.values():
        if proc.stale:
            continue
        for part in proc.components:
            if part in ("wifi", "ble", "sdr") and part not in reported:
                problems.append(f"{RADIO_WORDS[part]}: configured but never reported")
                reported.add(part)
    if not any(s.radio in ("wifi", "ble", "sdr") for s in sensors):
        problems.append("no radio has reported")
    return problems


def _disk_problem(disk: DiskHealth | None) -> str | None:
    if disk is None or disk.total_bytes <= 0:
        return None
    if disk.free_bytes < DISK_FULL_BYTES:
        return f"{DISK_FULL}: the store cannot record alerts until space is freed"
    floor = max(DISK_MIN_FREE_BYTES, DISK_MIN_FREE_FRACTION * disk.total_bytes)
    if disk.free_bytes < floor:
        return f"disk almost full: {disk.free_bytes // (1024 * 1024)} MiB free"
    return None


def _with_integrity(
    sensors: list[SensorOut], integrity: IntegrityResult | None, now: float
) -> list[SensorOut]:
    """The store sensor as the latest quick_check left it. The check's verdict file is read
    beside the database because the damaged database may not have taken the row's update."""
    if integrity is None or integrity.ok:
        return sensors
    message = integrity.message()
    out = [s for s in sensors if s.sensor != STORE_SENSOR]
    row = next((s for s in sensors if s.sensor == STORE_SENSOR), None)
    if row is not None and row.message == message and row.status != "ok":
        return sensors
    out.append(
        SensorOut(
            sensor=STORE_SENSOR,
            radio=STORE_SENSOR,
            state="degraded",
            status=SensorHealthStatus("degraded"),
            message=message,
            updated_ts=integrity.ts,
            last_obs_ts=None,
            age_s=round(max(0.0, now - integrity.ts), 3),
            dropped=0,
            counters=row.counters if row is not None else {},
            detail={**(row.detail if row is not None else {}), "integrity": integrity.as_dict()},
        )
    )
    return sorted(out, key=lambda s: s.sensor)


def _store_stale_s(runtime: dict[str, RuntimeProcess], radio_stale_s: float) -> float:
    every = [
        float(r["every_s"])
        for p in runtime.values()
        if not p.stale
        and isinstance(r := (p.model_extra or {}).get("retention"), dict)
        and isinstance(r.get("every_s"), int | float)
    ]
    return max(radio_stale_s, _STORE_MISSED_RUNS * max(every, default=RETENTION_EVERY_S))


def sensors_now(
    store: Store,
    settings: ApiSettings,
    now: float,
    runtime: dict[str, RuntimeProcess] | None = None,
) -> list[SensorOut]:
    if runtime is None:
        runtime = runtime_now(store, now)
    drops = _core_queue_drops(runtime)
    store_stale = _store_stale_s(runtime, settings.sensor_stale_s)
    return [
        sensor_out(
            s,
            now,
            store_stale if s["sensor"] == STORE_SENSOR else settings.sensor_stale_s,
            drops.get(s["sensor"], 0),
        )
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


class PublicSensor(BaseModel):
    radio: str
    state: str = Field(description="as the sensor last reported it")
    status: SensorHealthStatus = Field(
        description="what the page shows: 'silent' when the sensor stopped reporting"
    )


class PublicStore(BaseModel):
    ok: bool


class PublicHealth(BaseModel):
    """What anyone may know: whether the appliance is well, per sensor. No paths, sizes,
    counters or messages (those can name devices and files): ``GET /api/v1/health``."""

    status: OverallStatus
    time: float
    store: PublicStore
    sensors: dict[str, PublicSensor] = Field(description="per sensor, by name")


class HealthDetail(Healthz):
    problems: list[str] = Field(
        default_factory=list,
        description="why the status is not ok, in words a guard can read; empty when ok",
    )


def health_detail(store: Store, settings: ApiSettings, now: float) -> HealthDetail:
    """Everything known about the appliance's health, with the reasons it is not ok."""
    sensors: list[SensorOut] = []
    runtime: dict[str, RuntimeProcess] = {}
    try:
        version = store.schema_version()
        runtime = runtime_now(store, now)
        sensors = sensors_now(store, settings, now, runtime)
        store_health = StoreHealth(ok=True, schema_version=version)
    except Exception as exc:  # any store failure is what this endpoint reports
        _LOGGER.warning("health check cannot read the store: %s", exc)
        store_health = StoreHealth(ok=False, error=describe(exc))
    sensors = _with_integrity(sensors, read_state(settings.store_path), now)
    disk = _disk(settings.store_path)
    problems: list[str] = []
    if not store_health.ok:
        problems.append(f"the store cannot be read: {store_health.error}")
    problems += _runtime_problems(runtime)
    if store_health.ok:
        problems += _sensor_problems(sensors, runtime)
    disk_problem = _disk_problem(disk)
    if disk_problem:
        problems.append(disk_problem)
    if not store_health.ok:
        status = "fault"
    elif problems:
        status = "degraded"
    else:
        status = "ok"
    return HealthDetail(
        status=OverallStatus(status),
        version=__version__,
        time=now,
        store=store_health,
        disk=disk,
        sensors={s.sensor: s for s in sensors},
        runtime=runtime,
        problems=problems,
    )


@router.get(
    "/healthz",
    response_model=PublicHealth,
    summary="Appliance status for monitoring: ok/degraded/fault and each sensor's (no sign-in)",
    responses={503: {"model": PublicHealth, "description": "the store cannot be read"}},
)
def healthz(
    store: StoreDep, settings: SettingsDep, clock: ClockDep, response: Response
) -> PublicHealth:
    detail = health_detail(store, settings, clock())
    if detail.status == "fault":
        response.status_code = 503
    return PublicHealth(
        status=detail.status,
        time=detail.time,
        store=PublicStore(ok=detail.store.ok),
        sensors={
            name: PublicSensor(radio=s.radio, state=s.state, status=s.status)
            for name, s in detail.sensors.items()
        },
    )


@router.get(
    "/api/v1/health",
    response_model=HealthDetail,
    summary="Appliance health in detail: store, disk, sensors, processes, and why not ok",
    tags=["sensors"],
)
def health(
    store: StoreDep, settings: SettingsDep, clock: ClockDep, _user: CurrentUser
) -> HealthDetail:
    return health_detail(store, settings, clock())


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
