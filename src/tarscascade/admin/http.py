"""HTTP plumbing shared by the admin APIs: JSON error answers and request metrics.

Every error leaves as ``{"error": "<one readable line>", "reason": "<code>"}`` (the
``Error`` model of the OpenAPI document): the library's exceptions by kind (bad input
400, missing 404, duplicate 409, database trouble 503), FastAPI's request validation as
400 (not 422: the CLI and scripts need one rule, "4xx means your request was refused,
nothing changed"), and Starlette's own 404/405. ``reason`` is for programs: a 404 is
``not_found`` for a missing record but ``no_route`` for a path the API does not have,
so ``--ignore-not-found`` never mistakes a wrong URL for an absent endpoint. A query
parameter a route does not declare is refused with 400 too (:class:`DeclaredQueryRoute`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi._compat import field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tarscascade.admin.models import errors
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


#: the longest parameter name an error answer repeats (it comes from the caller)
SHOWN_NAME = 40


class DeclaredQueryRoute(APIRoute):
    """An API route that refuses a query parameter it does not declare, and a repeated
    single-valued one, with 400 before the body is read or anything is done.

    FastAPI ignores undeclared parameters, so a misspelled precondition
    (``?if_revison=5``) would turn a conditional write into an unconditional one, and of
    ``?if_revision=1&if_revision=2`` it silently keeps the last. The names come from the
    route's dependant (its own parameters and its dependencies', e.g. the precondition's
    ``if_revision``), read once when the route is built; a request without a query string
    costs one check. An app opts in with ``app.router.route_class = DeclaredQueryRoute``.
    Query parameter models and an include's own dependencies are not read (the apps use
    neither): a name missed that way is refused, loudly, never silently accepted.
    """

    #: every query parameter the route declares, and those FastAPI reads one value of
    query_names: frozenset[str]
    single_query: frozenset[str]

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # every route can answer 400 now: the OpenAPI document says so (unless it already does)
        responses = {**errors(400), **(kwargs.pop("responses", None) or {})}
        super().__init__(path, endpoint, responses=responses, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        names, single = declared_query(self.dependant)
        self.query_names, self.single_query = names, single

        async def checked(request: Request) -> Response:
            if request.scope["query_string"]:
                refusal = query_refusal(request.query_params, names, single)
                if refusal is not None:
                    return error_response(400, refusal)
            return await handler(request)

        return checked


def declared_query(dependant: Dependant) -> tuple[frozenset[str], frozenset[str]]:
    """The query parameter names of a route's dependant tree: all, and the single-valued."""
    names: set[str] = set()
    single: set[str] = set()
    todo = [dependant]
    while todo:
        d = todo.pop()
        todo.extend(d.dependencies)
        for field in d.query_params:
            names.add(field.alias)
            # FastAPI's own test for "read every value" (getlist) versus "read one"
            if not field_annotation_is_sequence(field.field_info.annotation):
                single.add(field.alias)
    return frozenset(names), frozenset(single)


def query_refusal(params: QueryParams, names: frozenset[str], single: frozenset[str]) -> str | None:
    """Why a query is refused (one line naming the parameters), or None if it is fine."""
    keys = [k for k, _ in params.multi_items()]
    distinct = dict.fromkeys(keys)  # in the order given
    unknown = [k for k in distinct if k not in names]
    repeated = [k for k in distinct if k in single and keys.count(k) > 1]
    parts = []
    if unknown:
        takes = f"takes: {', '.join(sorted(names))}" if names else "takes none"
        s = "s" if len(unknown) > 1 else ""
        parts.append(f"unknown query parameter{s} {_quoted(unknown)} (this route {takes})")
    if repeated:
        parts.append(
            f"query parameter {_quoted(repeated)} given more than once (it takes one value)"
        )
    return "; ".join(parts) or None


def _quoted(names: list[str]) -> str:
    shown = [repr(n if len(n) <= SHOWN_NAME else n[:SHOWN_NAME] + "…") for n in names]
    more = len(shown) - MAX_SHOWN_ERRORS
    return ", ".join(shown[:MAX_SHOWN_ERRORS]) + (f" and {more} more" if more > 0 else "")


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
