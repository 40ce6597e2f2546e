"""HTTP plumbing shared by the admin APIs: JSON error answers and request metrics.

Every error leaves as ``{"error": "<one readable line>", "reason": "<code>"}`` (the
``Error`` model of the OpenAPI document): the library's exceptions by kind (bad input
400, missing 404, duplicate 409, database trouble 503), FastAPI's request validation as
400 (not 422: the CLI and scripts need one rule, "4xx means your request was refused,
nothing changed"), and Starlette's own 404/405. ``reason`` is for programs: a 404 is
``not_found`` for a missing record but ``no_route`` for a path the API does not have,
so ``--ignore-not-found`` never mistakes a wrong URL for an absent endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tarscascade.errors import (
    ConflictError,
    EndpointSyntaxError,
    InvalidRecordError,
    NotFoundError,
    StoreError,
    ValidationError,
)

# Looked up along the exception's MRO, so NotFoundError wins over its base StoreError.
ERROR_STATUS: dict[type[Exception], int] = {
    ValidationError: 400,
    EndpointSyntaxError: 400,
    InvalidRecordError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    StoreError: 503,
}
MAX_SHOWN_ERRORS = 3
#: the ``reason`` of an error answer by status, unless the raiser says otherwise
REASONS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    500: "internal",
    503: "unavailable",
}
NO_ROUTE = "no_route"
#: FastAPI's built-in OpenTelemetry off: the APIs count requests in Prometheus
#: (``RequestMetricsMiddleware``), and no environment variable should turn spans on
#: behind the operator's back (its per-request provider look-ups: a few % of a write's
#: py-spy samples, not separable from noise in bench_writes)
FASTAPI_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def error_body(status: int, message: str, reason: str | None = None) -> dict[str, str]:
    return {"error": message, "reason": reason or REASONS.get(status, "error")}


def error_response(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    reason: str | None = None,
) -> Response:
    return JSONResponse(error_body(status, message, reason), status_code=status, headers=headers)


def describe_validation(errors: Sequence[Any]) -> str:
    """FastAPI/pydantic errors as one line: ``body.port: Input should be ...; ...``."""
    parts = []
    for e in errors[:MAX_SHOWN_ERRORS]:
        loc = tuple(e.get("loc", ()))
        if loc == ("body",) and e.get("type") == "missing":
            parts.append("a JSON request body is required")
            continue
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error", "")
            parts.append(f"the request body is not valid JSON: {detail}".rstrip(": "))
            continue
        where = ".".join(str(x) for x in loc) or "request"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    if len(errors) > MAX_SHOWN_ERRORS:
        parts.append(f"and {len(errors) - MAX_SHOWN_ERRORS} more")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, describe_validation(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        reason = None
        if exc.status_code == 404 and exc.detail == "Not Found":
            message, reason = f"no such route: {request.url.path}", NO_ROUTE
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, exc.headers, reason=reason)

    async def on_library_error(request: Request, exc: Exception) -> Response:
        status = next((ERROR_STATUS[t] for t in type(exc).__mro__ if t in ERROR_STATUS), 500)
        return error_response(status, str(exc) or type(exc).__name__)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for exc_type in ERROR_STATUS:
        app.add_exception_handler(exc_type, on_library_error)


class RequestObserver(Protocol):
    """What counts requests: :class:`RegistryMetrics` or the node's ``NodeMetrics``."""

    def observe_request(self, route: str, method: str, status: int) -> None: ...


class RequestMetricsMiddleware:
    """Counts requests by route *template* (bounded label values), method and status."""

    METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

    def __init__(self, app: ASGIApp, *, metrics: RequestObserver, routes: list[BaseRoute]):
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in self.METHODS else "OTHER"
            self.metrics.observe_request(self._route(scope), method, status)

    def _route(self, scope: Scope) -> str:
        routed = scope.get("route")  # the router's match, when the request reached it
        if routed is not None:
            return str(getattr(routed, "path", "?"))
        # Requests refused by the guard (401/413) never reach the router but should
        # still count per route: matched here.
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "?"))
            if match is Match.PARTIAL and partial is None:
                partial = str(getattr(route, "path", "?"))
        return partial or "unmatched"
