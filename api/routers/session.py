"""Signing in and out: ``POST``/``DELETE /api/v1/session`` and who am I (``GET``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets

from fastapi import APIRouter, Request, Response

from api.deps import SESSION_COOKIE, ClockDep, CurrentUser, SettingsDep, StoreDep
from api.problems import ApiProblem
from api.schemas import LoginRequest, SessionOut
from api.throttle import LoginThrottle
from scanner.store import sessions as session_store
from scanner.store import users as user_store
from scanner.store.db import Store

router = APIRouter(prefix="/api/v1/session", tags=["session"])


# Set on every successful sign-in, sent back only to the sign-in route: proof that this browser
# has signed in as that user before, which exempts it from the account-wide sign-in pause (a
# stranger guessing from many hosts cannot lock the tablet out) and gives it failure counts of
# its own instead of its address's. It opens nothing by itself.
DEVICE_COOKIE = "checkpoint_device"
_DEVICE_KEY_SETTING = "device_cookie_key"
_DEVICE_COOKIE_MAX_AGE_S = 365 * 86_400
# The account name PIN sign-ins without a name are counted under (no user name can contain ':').
PIN_ACCOUNT = "pin:"

_REFUSED = "wrong user name, password or PIN"


def _device_key(store: Store) -> bytes:
    existing = store.get_setting(_DEVICE_KEY_SETTING)
    if existing is None:
        with store.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)",
                (_DEVICE_KEY_SETTING, json.dumps(secrets.token_hex(32))),
            )
        existing = store.get_setting(_DEVICE_KEY_SETTING)
    return bytes.fromhex(str(existing))


def _device_mac(key: bytes, username: str, nonce: str) -> str:
    return hmac.new(key, f"device|{username}|{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def device_cookie(key: bytes, username: str) -> str:
    nonce = secrets.token_urlsafe(12)
    return f"{username}.{nonce}.{_device_mac(key, username, nonce)}"


def device_user(key: bytes, cookie: str | None) -> str | None:
    """The user name a valid device cookie was issued for, or None."""
    if not cookie or len(cookie) > 200:
        return None
    parts = cookie.rsplit(".", 2)
    if len(parts) != 3:
        return None
    username, nonce, mac = parts
    if not hmac.compare_digest(mac, _device_mac(key, username, nonce)):
        return None
    return username


@router.post(
    "",
    response_model=SessionOut,
    summary="Sign in with user name and password, or with a guard's PIN",
    responses={
        401: {"description": "wrong credentials"},
        403: {"description": "the account is disabled"},
        429: {"description": "too many failed sign-ins: wait (see Retry-After)"},
    },
)
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> SessionOut:
    ts = clock()
    client = request.client.host if request.client else ""
    trusted = bool(request.app.state.trusted(client))
    throttle: LoginThrottle = request.app.state.throttle
    if body.pin is not None and body.username is None:
        account = PIN_ACCOUNT
    else:
        account = (body.username or "")[:64].lower()
    key = _device_key(store)
    known = device_user(key, request.cookies.get(DEVICE_COOKIE))
    # The device has signed in as this user before (for a PIN without a name: as any guard).
    known_device = known is not None and account in (known, PIN_ACCOUNT)
    exempt = trusted or known_device
    # A known device is counted by its cookie rather than its address: a guesser behind the
    # same NAT as the tablets (one address for all) blocks its own address, not the tablet.
    counted: str | None = None
    if not trusted:
        counted = f"device:{request.cookies.get(DEVICE_COOKIE)}" if known_device else client
    wait = throttle.reserve(counted, account, account_exempt=exempt)
    if wait > 0:
        # The same answer for every name, existing or not, and before any password check.
        raise ApiProblem(
            429,
            "too many failed sign-ins; try again later",
            type_="locked",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    if body.pin is not None:
        result = user_store.login_pin(store, body.pin, ts, body.username)
    else:
        result = user_store.login_password(store, body.username or "", body.password or "", ts)
    if result.user is None:
        if result.reason == "disabled":
            raise ApiProblem(403, "this account is disabled", type_="disabled")
        raise ApiProblem(401, _REFUSED, type_="bad-credentials")
    throttle.succeeded(counted, account, account_exempt=exempt)
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
    response.set_cookie(
        DEVICE_COOKIE,
        device_cookie(key, result.user.username),
        max_age=_DEVICE_COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=settings.tls,
        path="/api/v1/session",
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
