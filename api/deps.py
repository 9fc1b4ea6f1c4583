"""Dependencies for the routers, as ``Annotated`` aliases.

``CurrentUser`` is any signed-in user (a guard at least), ``SupervisorUser`` and ``AdminUser``
require those roles. A request is signed in by the session cookie the login sets, or by an API
token sent as ``Authorization: Bearer``. Everything lives on ``app.state``: no module globals,
so several apps (tests, the demo) can run in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from api.feed import LiveFeed
from api.problems import ApiProblem
from api.settings import ApiSettings
from api.throttle import LoginThrottle
from scanner.store.db import Store
from scanner.store.kiosk import kiosk_for_secret
from scanner.store.sessions import TokenGrant, session_user, token_grant
from scanner.store.users import ROLE_RANK, Role, User

SESSION_COOKIE = "checkpoint_session"
# The wall tablet's long-lived device credential (see scanner.store.kiosk).
KIOSK_COOKIE = "checkpoint_kiosk"

_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="set by POST /api/v1/session",
)
_kiosk_cookie = APIKeyCookie(
    name=KIOSK_COOKIE,
    auto_error=False,
    scheme_name="kiosk",
    description="set on a wall tablet by POST /api/v1/kiosk (guard role, until revoked)",
)
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="an API token from POST /api/v1/tokens or `checkpoint user token`",
)


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Callable[[], float]:
    clock: Callable[[], float] = request.app.state.clock
    return clock


def get_notify(request: Request) -> Callable[[str], None]:
    notify: Callable[[str], None] = request.app.state.notify
    return notify


def get_feed(request: Request) -> LiveFeed:
    feed: LiveFeed = request.app.state.feed
    return feed


def get_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.throttle
    return throttle


StoreDep = Annotated[Store, Depends(get_store)]
# Tells the core a person changed what it acts on ("ack", "allowlist"), once it is in the store.
NotifyDep = Annotated[Callable[[str], None], Depends(get_notify)]
ThrottleDep = Annotated[LoginThrottle, Depends(get_throttle)]
# Wakes the event streams when the core committed rows to the live feed.
FeedDep = Annotated[LiveFeed, Depends(get_feed)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
ClockDep = Annotated[Callable[[], float], Depends(get_clock)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, and how they proved it."""

    user: User
    via: str  # 'session' | 'token' | 'kiosk'
    session_token: str | None = None
    api_token: str | None = None
    grant: TokenGrant | None = None  # for a token: its scope, expiry and right to mint
    kiosk_id: str | None = None

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(
        401, detail, type_="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="checkpoint"'}
    )


def current_principal(
    store: StoreDep,
    clock: ClockDep,
    cookie: Annotated[str | None, Depends(_cookie)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    kiosk: Annotated[str | None, Depends(_kiosk_cookie)],
) -> Principal:
    """The signed-in user, or 401.

    A person's session on a kiosk tablet (a supervisor managing the allowlist) comes first;
    when it ends, the tablet falls back to its kiosk credential instead of a sign-in page.
    """
    if bearer is not None:
        info = kiosk_for_secret(store, bearer.credentials)
        if info is not None:
            return Principal(info.as_user(), "kiosk", kiosk_id=info.id)
        grant = token_grant(store, bearer.credentials, clock())
        if grant is None:
            raise _unauthorized("the API token is not valid or has expired")
        return Principal(grant.user, "token", api_token=bearer.credentials, grant=grant)
    if cookie:
        user = session_user(store, cookie, clock())
        if user is not None:
            return Principal(user, "session", cookie)
    if kiosk:
        info = kiosk_for_secret(store, kiosk)
        if info is not None:
            return Principal(info.as_user(), "kiosk", kiosk_id=info.id)
    if cookie:
        raise _unauthorized("the session has expired; sign in again")
    if kiosk:
        raise _unauthorized("this tablet's kiosk credential was revoked; sign in")
    raise _unauthorized("sign in first")


def require_role(role: str) -> Callable[[Principal], Principal]:
    """A dependency that lets only ``role`` and the roles above it through (else 403)."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if ROLE_RANK[principal.role] < ROLE_RANK[role]:
            raise ApiProblem(403, f"this needs the {role} role", type_="forbidden")
        return principal

    check.required_role = role  # type: ignore[attr-defined]
    check.__name__ = f"require_{role}"
    return check


CurrentUser = Annotated[Principal, Depends(current_principal)]
SupervisorUser = Annotated[Principal, Depends(require_role("supervisor"))]
AdminUser = Annotated[Principal, Depends(require_role("admin"))]
