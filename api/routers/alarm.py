"""The tablet's alarm controls that are not acknowledgements: Silence and the siren test.

Silencing stops the sound on the tablet for a few minutes while the alarm stays on screen; it
acknowledges nothing. Both are written to the audit log, so an after-action review sees who
quieted the alarm and when, next to who acknowledged it.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentUser, StoreDep
from scanner.store import audit

router = APIRouter(prefix="/api/v1/alarm", tags=["alarm"])

# Longer than one look round the gate area is no longer "silence while I deal with it":
# a guard who needs more acknowledges instead.
MAX_SILENCE_MIN = 15


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: int = Field(ge=1, le=MAX_SILENCE_MIN, description="how long the sound stops")
    alert_ids: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="the unacknowledged alerts on screen when silenced",
    )


class SilenceOut(BaseModel):
    until_ts: float = Field(description="the sound comes back at this time (unix seconds)")
    by: str


class SirenTestOut(BaseModel):
    ts: float
    by: str


@router.post("/silence", response_model=SilenceOut, summary="Silence the alarm sound (logged)")
def silence(
    body: SilenceRequest, store: StoreDep, user: CurrentUser, clock: ClockDep
) -> SilenceOut:
    ts = clock()
    until = ts + body.minutes * 60
    ids = [i[:128] for i in body.alert_ids]
    audit.record(
        store,
        ts,
        user.username,
        "alarm.silence",
        {"minutes": body.minutes, "until_ts": until, "alert_ids": ids},
    )
    return SilenceOut(until_ts=until, by=user.username)


@router.post("/test", response_model=SirenTestOut, summary="Note a siren test (logged)")
def siren_test(store: StoreDep, user: CurrentUser, clock: ClockDep) -> SirenTestOut:
    ts = clock()
    audit.record(store, ts, user.username, "alarm.test", {})
    return SirenTestOut(ts=ts, by=user.username)
