"""Errors as problem details (RFC 9457, ``application/problem+json``), for every error path:
our own, FastAPI's validation errors, Starlette's 404/405, oversized bodies and crashes.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import Problem

_LOGGER = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Our problem types are relative URIs under this prefix; they are documented by their title.
TYPE_PREFIX = "/problems/"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class ApiProblem(StarletteHTTPException):
    """Raise in a route to answer with a problem document of a given type."""

    def __init__(
        self,
        status: int,
        detail: str,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.type_ = type_
        self.extra = extra or {}


def problem(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    type_: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ProblemResponse:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = Problem(
        type=TYPE_PREFIX + type_ if type_ else "about:blank",
        title=title,
        status=status,
        detail=detail,
        instance=instance,
    ).model_dump(exclude_none=True)
    body.update(extra or {})
    return ProblemResponse(body, status_code=status, headers=headers)


async def _http_exception(request: Request, exc: Exception) -> ProblemResponse:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registration guards
        raise exc
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    type_ = getattr(exc, "type_", None)
    extra = getattr(exc, "extra", None)
    return problem(
        exc.status_code,
        detail,
        instance=request.url.path,
        type_=type_,
        headers=dict(exc.headers) if exc.headers else None,
        extra=extra,
    )


async def _validation(request: Request, exc: Exception) -> ProblemResponse:
    errors: list[dict[str, Any]] = []
    if isinstance(exc, RequestValidationError):
        for err in exc.errors():
            errors.append(
                {
                    "loc": [str(part) for part in err.get("loc", ())],
                    "msg": str(err.get("msg", "")),
                    "type": str(err.get("type", "")),
                }
            )
    where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem(
        422,
        f"the request is not valid: {where}" if where else "the request is not valid",
        instance=request.url.path,
        type_="validation",
        extra={"errors": errors},
    )


async def _crash(request: Request, exc: Exception) -> ProblemResponse:
    _LOGGER.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal error; the details are in the server log", type_="internal")


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _crash)
