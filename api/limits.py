"""Request limits and response headers, as plain ASGI middleware (no buffering of streams)."""

from __future__ import annotations

import math
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The page uses no inline script or style and no third-party origin; anything else is refused,
# a second wall behind inserting radio strings with textContent only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class BodyTooLargeError(HTTPException):
    """Raised while a body is read; FastAPI passes HTTP exceptions through to our handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.type_ = "too-large"


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``: by Content-Length at once, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
        if declared is not None and (declared < 0 or declared > self.max_bytes):
            status = 413 if declared > self.max_bytes else 400
            detail = (
                f"the request body is larger than {self.max_bytes} bytes"
                if status == 413
                else "Content-Length is not a number"
            )
            await _send_problem(
                send, status, detail, "too-large" if status == 413 else "bad-request"
            )
            return
        received = 0
        limit = self.max_bytes

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, limited, send)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _send_problem(
    send: Send, status: int, detail: str, type_: str, *, retry_after: int | None = None
) -> None:
    import json
    from http import HTTPStatus

    body = json.dumps(
        {
            "type": f"/problems/{type_}",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HostCheckMiddleware:
    """Answer 421 to a request whose Host names a host this scanner is not (DNS rebinding).

    A page on a name the attacker controls, re-pointed at the scanner's address, would send
    that name as Host; an IP literal cannot be re-pointed, so literals always pass, as do
    ``localhost``, this machine's own names and the ``[api] allowed_hosts``. Every route is
    covered, the sign-in and ``/healthz`` included.
    """

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host: bytes | None = None
        for name, value in scope.get("headers", []):
            if name == b"host":
                host = value
                break
        if host is not None and not host_allowed(host.decode("latin-1"), self.allowed):
            await _send_problem(
                send, 421, "this server does not answer for that host name", "wrong-host"
            )
            return
        await self.app(scope, receive, send)


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    import ipaddress

    name = host.strip().lower()
    if name.startswith("["):  # [v6]:port
        end = name.find("]")
        literal = name[1:end] if end > 0 else ""
        try:
            ipaddress.IPv6Address(literal)
            return True
        except ValueError:
            return False
    name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name.rstrip(".") in allowed


class RateLimitMiddleware:
    """429 for a client address past its request budget (trusted addresses are exempt)."""

    def __init__(
        self,
        app: ASGIApp,
        take: Callable[[str], float],
        trusted: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.take = take
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else ""
        if not self.trusted(address):
            wait = self.take(address)
            if wait > 0:
                await _send_problem(
                    send,
                    429,
                    "too many requests from this address; slow down",
                    "rate-limited",
                    retry_after=max(1, math.ceil(wait)),
                )
                return
        await self.app(scope, receive, send)
