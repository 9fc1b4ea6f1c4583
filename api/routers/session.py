"""Signing in and out: ``POST``/``DELETE /api/v1/session`` and who am I (``GET``)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import SESSION_COOKIE, ClockDep, CurrentUser, SettingsDep, StoreDep
from api.problems import ApiProblem
from api.schemas import LoginRequest, SessionOut
from scanner.store import sessions as session_store
from scanner.store import users as user_store

router = APIRouter(prefix="/api/v1/session", tags=["session"])


@router.post(
    "",
    response_model=SessionOut,
    summary="Sign in with user name and password, or with the tablet PIN",
    responses={
        401: {"description": "wrong credentials"},
        403: {"description": "the account is disabled"},
        429: {"description": "too many failures: locked for a while (see Retry-After)"},
    },
)
def login(
    body: LoginRequest,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> SessionOut:
    ts = clock()
    if body.pin is not None:
        result = user_store.login_pin(store, body.pin, ts, body.username)
    else:
        result = user_store.login_password(store, body.username or "", body.password or "", ts)
    if result.user is None:
        if result.reason == "locked":
            raise ApiProblem(
                429,
                "too many failed sign-ins; try again later",
                type_="locked",
                headers={"Retry-After": str(max(1, int(result.retry_after_s)))},
            )
        if result.reason == "disabled":
            raise ApiProblem(403, "this account is disabled", type_="disabled")
        raise ApiProblem(401, "wrong user name, password or PIN", type_="bad-credentials")
    token = session_store.create_session(store, result.user.username, ts, settings.session_ttl_s)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_ttl_s),
        httponly=True,
        samesite="strict",
        secure=settings.tls,
        path="/",
    )
    return SessionOut(
        username=result.user.username,
        role=result.user.role,
        expires_ts=ts + settings.session_ttl_s,
        via="session",
        demo=settings.demo,
        site=settings.site_name,
    )


@router.get("", response_model=SessionOut, summary="Who is signed in")
def whoami(principal: CurrentUser, store: StoreDep, settings: SettingsDep) -> SessionOut:
    expires: float | None = None
    if principal.session_token is not None:
        expires = session_store.session_expiry(store, principal.session_token)
    return SessionOut(
        username=principal.username,
        role=principal.role,
        expires_ts=expires,
        via="session" if principal.via == "session" else "token",
        demo=settings.demo,
        site=settings.site_name,
    )


@router.delete("", status_code=204, summary="Sign out (ends this session)")
def logout(
    principal: CurrentUser,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    if principal.session_token is not None:
        session_store.end_session(store, principal.session_token, clock(), principal.username)
    out = Response(status_code=204)
    out.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=settings.tls
    )
    return out
