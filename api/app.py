"""``create_app(settings)``: the FastAPI application, with no global state.

The routers are one file per resource under ``api/routers``; this module wires them together
with the store, the problem+json error handlers, request limits, the tablet page and an OpenAPI
document that says, per operation, which role it needs and which errors it can answer.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from api import problems
from api.feed import LiveFeed
from api.limits import (
    BodyLimitMiddleware,
    HostCheckMiddleware,
    RateLimitMiddleware,
    SecurityHeadersMiddleware,
)
from api.routers import (
    alarm,
    alerts,
    allowlist,
    audit,
    devices,
    events,
    export,
    gates,
    health,
    kiosk,
    session,
    tokens,
    users,
    zone,
)
from api.schemas import Problem
from api.settings import ApiSettings
from api.throttle import LoginThrottle, RateLimiter, is_trusted, parse_networks
from scanner import __version__
from scanner.export.seal_key import attach_chain_key
from scanner.store.db import Store

_LOGGER = logging.getLogger(__name__)

_ERROR_TEXT = {
    400: "the request body cannot be read",
    401: "not signed in, or the session or token is not valid",
    403: "the signed-in role may not do this",
    404: "not found",
    413: "the request body is too large",
    421: "the Host header names a host this server does not answer for",
    422: "the request is not valid",
    429: "too many requests from this address (see Retry-After)",
}


def _core_polls(_what: str) -> None:
    """No core to tell (an API on its own, a test): the core reads the store on its poll."""


def create_app(
    settings: ApiSettings,
    *,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
    notify: Callable[[str], None] | None = None,
    feed: LiveFeed | None = None,
) -> FastAPI:
    """Build the app. ``store`` lets the one-process demo share its store; else one is opened.

    ``notify`` tells the core that an acknowledgement or the allowlist changed in the store
    (``scanner.runtime.transport``: its queue in one process, its socket as a daemon); without
    one the core finds the change on its own periodic poll of the store.

    ``feed`` is woken when the core has committed rows to the store's live feed (its bell in one
    process, the ``FeedWatcher`` on its socket as a daemon); without a word the event streams
    read the store on their poll alone.
    """
    own_store = store if store is not None else Store(settings.store_path)
    settings.check(own_store)
    if own_store.chain_key is None:
        # A guard's acknowledgement is a link of the alert history: keyed like the core's.
        attach_chain_key(own_store)
    app = FastAPI(
        title="Checkpoint Scanner",
        version=__version__,
        description=(
            "The API behind the guard's tablet. Sign in with `POST /api/v1/session` (a cookie) "
            "or send an API token as `Authorization: Bearer`. Roles: guard < supervisor < admin. "
            "Errors are `application/problem+json` (RFC 9457)."
        ),
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=_command_post_lifespan(settings, own_store, clock)
        if settings.mode == "command-post"
        else None,
    )
    app.state.settings = settings
    app.state.store = own_store
    app.state.clock = clock
    app.state.notify = notify if notify is not None else _core_polls
    app.state.feed = feed if feed is not None else LiveFeed()
    # The API's own writes to the live feed (an acknowledgement, a zone or allowlist change)
    # wake its event streams as the core's word wakes them for the core's rows.
    own_store.on_feed_commit(app.state.feed.wake)
    trusted_nets = parse_networks(settings.trusted_clients)
    app.state.trusted = lambda client: is_trusted(client, trusted_nets)
    app.state.throttle = LoginThrottle(
        client_failures=settings.login_client_failures,
        client_block_s=settings.login_client_block_s,
        account_failures=settings.login_account_failures,
        account_lock_s=settings.login_account_lock_s,
        clock=clock,
    )
    rate = RateLimiter(settings.rate_per_s, settings.rate_burst, clock)
    problems.install(app)

    routers = [
        m.router
        for m in (
            health,
            session,
            alerts,
            alarm,
            events,
            devices,
            allowlist,
            zone,
            users,
            tokens,
            audit,
            export,
            kiosk,
        )
    ]
    if settings.mode == "command-post":
        routers.append(gates.router)
    for router in routers:
        app.include_router(router)
    _serve_page(app, settings)

    # The last added runs first: headers on every answer, then the Host check, then the rate.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitMiddleware, take=rate.take, trusted=app.state.trusted)
    app.add_middleware(HostCheckMiddleware, allowed=_allowed_hosts(settings))
    app.add_middleware(SecurityHeadersMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _openapi(app, routers)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _command_post_lifespan(
    settings: ApiSettings, store: Store, clock: Callable[[], float]
) -> Callable[[FastAPI], Any]:
    """While the server runs, the command post listens to every gate over the broker."""
    from scanner.mqtt.command_post import CommandPost

    broker = settings.broker
    if broker is None:
        raise ValueError("a command post needs the broker's settings ([mqtt])")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        link = CommandPost(broker, store, clock)
        link.start()
        app.state.command_post = link
        try:
            yield
        finally:
            app.state.command_post = None
            link.stop()

    return lifespan


def _allowed_hosts(settings: ApiSettings) -> frozenset[str]:
    """Host names the API answers to (IP literals always pass; see HostCheckMiddleware)."""
    own = socket.gethostname().lower().rstrip(".")
    names = {"localhost", own, own.split(".")[0] + ".local"}
    names.update(h.lower().rstrip(".") for h in settings.allowed_hosts)
    return frozenset(n for n in names if n)


def _serve_page(app: FastAPI, settings: ApiSettings) -> None:
    static = settings.static_dir

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/sw.js", include_in_schema=False)
    def service_worker() -> FileResponse:
        # Served from the root so its scope covers the whole page.
        return FileResponse(
            static / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/manifest.webmanifest", include_in_schema=False)
    def manifest() -> FileResponse:
        return FileResponse(static / "manifest.webmanifest", media_type="application/manifest+json")

    app.mount("/static", StaticFiles(directory=static), name="static")


def _required_role(route: APIRoute) -> str | None:
    roles: list[str] = []
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        role = getattr(dep.call, "required_role", None)
        if isinstance(role, str):
            roles.append(role)
        stack.extend(dep.dependencies)
    order = ("guard", "supervisor", "admin")
    return max(roles, key=order.index) if roles else None


def _openapi(app: FastAPI, routers: list[APIRouter]) -> dict[str, Any]:
    """FastAPI's document, plus: required roles, every error response as problem+json."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem_content = {
        problems.PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    # Routers are included without a further prefix, so their routes' paths are final.
    roles = {
        (method.lower(), route.path_format): _required_role(route)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            responses: dict[str, Any] = op.setdefault("responses", {})
            codes: set[int] = {421, 422, 429}
            if op.get("security"):
                codes.add(401)
            role = roles.get((method, path))
            if role is not None:
                op["x-required-role"] = role
                codes.add(403)
                op["description"] = (
                    op.get("description", "") + f"\n\nRequires the {role} role."
                ).strip()
            elif op.get("security"):
                op["x-required-role"] = "guard"
            if "requestBody" in op:
                codes.update((400, 413))
            for code in sorted(codes):
                responses.setdefault(str(code), {"description": _ERROR_TEXT[code]})
            for status, response in responses.items():
                if (
                    status.isdigit()
                    and int(status) >= 400
                    and (path, status) != ("/healthz", "503")
                ):
                    response["content"] = problem_content
    return doc
