"""Kiosk credentials for wall tablets: a supervisor issues and revokes them; the tablet asks
whether it is one, and can give its own up (its Sign out).

``POST /api/v1/kiosk`` with ``this_device`` (the default) sets the kiosk cookie on the browser
that asked and ends the supervisor's own session there, so the wall screen keeps the guard role
only. The secret is also in the response, once, for a tablet enrolled by a script.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    KIOSK_COOKIE,
    SESSION_COOKIE,
    ClockDep,
    CurrentUser,
    SettingsDep,
    StoreDep,
    SupervisorUser,
)
from api.problems import ApiProblem
from scanner.store import kiosk as kiosk_store
from scanner.store import sessions as session_store

_LOGGER = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/kiosk", tags=["kiosk"])

KioskId = Annotated[str, Path(min_length=12, max_length=12, pattern=r"^[0-9a-f]{12}$")]
# The cookie outlives any tablet: the credential ends when a supervisor revokes it.
KIOSK_COOKIE_MAX_AGE_S = 10 * 365 * 24 * 3600


class KioskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=40, description="where the screen is")
    this_device: bool = Field(
        default=True,
        description="make the browser that asks the kiosk (sets its cookie, ends this session)",
    )


class KioskOut(BaseModel):
    id: str
    label: str
    created_ts: float
    created_by: str
    actor: str = Field(description="the name its acknowledgements are recorded under")


class KioskCreated(KioskOut):
    token: str = Field(
        description="shown once; the kiosk cookie's value, or `Authorization: Bearer <token>`"
    )


class KioskCurrent(BaseModel):
    kiosk: KioskOut | None = Field(description="null when this browser is not a kiosk")


def _out(info: kiosk_store.KioskInfo) -> KioskOut:
    return KioskOut(
        id=info.id,
        label=info.label,
        created_ts=info.created_ts,
        created_by=info.created_by,
        actor=info.actor,
    )


def _clear_cookie(response: Response, name: str, tls: bool) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="strict", secure=tls)


@router.get("", response_model=list[KioskOut], summary="Issued kiosk credentials")
def list_kiosks(store: StoreDep, _user: SupervisorUser) -> list[KioskOut]:
    return [_out(k) for k in kiosk_store.list_kiosks(store)]


@router.post(
    "",
    response_model=KioskCreated,
    status_code=201,
    summary="Issue a kiosk credential (guard role) for a wall tablet",
    responses={409: {"description": "the label is taken, or too many kiosks"}},
)
def issue_kiosk(
    body: KioskCreate,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    user: SupervisorUser,
    clock: ClockDep,
) -> KioskCreated:
    ts = clock()
    try:
        info, secret = kiosk_store.issue_kiosk(store, body.label, ts, user.username)
    except kiosk_store.KioskError as exc:
        raise ApiProblem(409, str(exc), type_="conflict") from None
    _LOGGER.info("kiosk %s (%s) issued by %s", info.id, info.label, user.username)
    if body.this_device:
        response.set_cookie(
            KIOSK_COOKIE,
            secret,
            max_age=KIOSK_COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=settings.tls,
            path="/",
        )
        # The screen on the wall must not keep a supervisor's rights.
        if user.session_token is not None:
            session_store.end_session(store, user.session_token, ts, user.username)
            _clear_cookie(response, SESSION_COOKIE, settings.tls)
    return KioskCreated(**_out(info).model_dump(), token=secret)


@router.get("/current", response_model=KioskCurrent, summary="Is this browser a kiosk?")
def current_kiosk(store: StoreDep, principal: CurrentUser) -> KioskCurrent:
    # A person signed in on a kiosk tablet is that person; the kiosk shows once they leave.
    if principal.kiosk_id is None:
        return KioskCurrent(kiosk=None)
    info = kiosk_store.kiosk_by_id(store, principal.kiosk_id)
    return KioskCurrent(kiosk=_out(info) if info is not None else None)


@router.delete(
    "/current",
    status_code=204,
    summary="This tablet gives up its kiosk credential (revokes it)",
    responses={404: {"description": "this browser is not signed in as a kiosk"}},
)
def leave_kiosk(
    store: StoreDep, settings: SettingsDep, principal: CurrentUser, clock: ClockDep
) -> Response:
    if principal.kiosk_id is None:
        raise ApiProblem(404, "this browser is not signed in as a kiosk", type_="not-found")
    kiosk_store.revoke_kiosk(store, principal.kiosk_id, clock(), principal.username)
    out = Response(status_code=204)
    _clear_cookie(out, KIOSK_COOKIE, settings.tls)
    return out


@router.delete(
    "/{kiosk_id}",
    status_code=204,
    summary="Revoke a kiosk credential (its tablet's live feed ends within seconds)",
    responses={404: {"description": "no such kiosk"}},
)
def revoke_kiosk(
    kiosk_id: KioskId, store: StoreDep, user: SupervisorUser, clock: ClockDep
) -> Response:
    if not kiosk_store.revoke_kiosk(store, kiosk_id, clock(), user.username):
        raise ApiProblem(404, "no such kiosk", type_="not-found")
    return Response(status_code=204)
