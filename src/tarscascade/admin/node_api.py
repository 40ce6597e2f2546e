"""The node agent's HTTP API: status, health, metrics and (blocking) object lookups.

Reads only, so no token: it tells what this node serves, nothing it could change.
``GET /v1/objects/{id}`` answers with the endpoints a TARS client of this node gets
from QueryF — the same catalog code and answer cache as the node's ServerObj — and
supports blocking queries in the style of Consul: ``?index=N&wait=30s`` returns as soon
as the object's index (the revision of its last change here) passes N, or when the
wait ends, with the answer current at that moment. Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from tarscascade import __version__
from tarscascade.admin.dashboard import STATIC_DIR, render, sse
from tarscascade.admin.http import (
    FASTAPI_TELEMETRY_OFF,
    DeclaredQueryRoute,
    RequestMetricsMiddleware,
    error_response,
    install_error_handlers,
)
from tarscascade.admin.node_metrics import NodeMetrics
from tarscascade.catalog.encoded import QueryMethod
from tarscascade.errors import EndpointSyntaxError, ValidationError
from tarscascade.node.app import NodeAgent
from tarscascade.wire.endpoint import Endpoint, format_endpoint, validate_object_id
from tarscascade.wire.idl.endpointf import EndpointF
from tarscascade.wire.idl.queryf import FIND_4ANY, FIND_IN_SAME_GROUP

__all__ = ["DEFAULT_WAIT", "MAX_WAIT", "NodeMetrics", "create_node_app", "parse_wait"]

Json = dict[str, Any]
#: the longest a blocking lookup may wait, and the wait when only ``index`` is given
MAX_WAIT = 300.0
DEFAULT_WAIT = 30.0
NO_DATA = "node has no data yet"
INDEX_HEADER = "X-Tarscascade-Index"
_WAIT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}

DESCRIPTION = """Read what this tarscascade node agent serves: its replica's versions and
health, Prometheus metrics, and the endpoints a TARS client of this node gets for an
object — optionally as a blocking query (`?index=N&wait=30s`) that returns as soon as
the object changes. Reads only. Errors are `{"error": "..."}`; a query parameter a route
does not declare is refused (400), not ignored."""


def parse_wait(text: str) -> float:
    """``30s``, ``500ms``, ``2m`` or plain seconds (``1.5``) → seconds, at most 300."""
    m = _WAIT.fullmatch(text.strip())
    if m is None:
        raise ValidationError(f"wait must be like 30s, 500ms, 2m or seconds, got {text!r}")
    seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if seconds > MAX_WAIT:
        raise ValidationError(f"wait is at most {MAX_WAIT:g} s, got {text!r}")
    return seconds


def create_node_app(agent: NodeAgent, *, metrics: NodeMetrics | None = None) -> FastAPI:
    """The ASGI app of one node agent; serve it with uvicorn (127.0.0.1:19380 by default)."""
    metrics = metrics if metrics is not None else NodeMetrics(agent)
    app = FastAPI(
        title="tarscascade node agent API",
        version=__version__,
        description=DESCRIPTION,
        telemetry=FASTAPI_TELEMETRY_OFF,
    )
    install_error_handlers(app)
    app.router.route_class = DeclaredQueryRoute  # before any route: each refuses unknown ?x=
    # straight onto app.router: the metrics middleware labels requests by route template
    _ops_routes(app.router, agent, metrics)
    _object_routes(app.router, agent)
    _page_routes(app, agent)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, routes=app.router.routes)
    return app


def _ops_routes(r: APIRouter, agent: NodeAgent, metrics: NodeMetrics) -> None:
    @r.get("/status", tags=["operations"], summary="versions, digests, lag, upstream, counts")
    async def status() -> Json:
        return agent.status()

    @r.get(
        "/healthz",
        tags=["operations"],
        summary="200 when the node has data to answer with and has not been stale for"
        " longer than its bound (--max-stale), else 503",
    )
    async def healthz() -> Response:
        if not agent.has_data():
            return error_response(
                503, f"{NO_DATA}: not synced with any upstream and no last-known-good replica"
            )
        stale_for = agent.stale_for()
        if stale_for > agent.config.max_stale:
            since = "ever since it started" if stale_for == float("inf") else f"{stale_for:.0f} s"
            return error_response(
                503,
                f"stale: the replica has not been confirmed current by a fresh upstream"
                f" for {since} (bound {agent.config.max_stale:.0f} s)",
            )
        synced = agent.client is not None and agent.client.synced.is_set()
        return JSONResponse(
            {
                "status": "stale" if agent.stale else "ok",
                "node": agent.config.name,
                "stale": agent.stale,
                "synced": synced,
            }
        )

    @r.get("/metrics", tags=["operations"], summary="Prometheus text exposition")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)


def _page_routes(app: FastAPI, agent: NodeAgent) -> None:
    """The node's status page (``/``), live over Server-Sent Events (admin/dashboard)."""

    @app.router.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return render("node.html", page="node", status=agent.status())

    @app.router.get("/ui/events", include_in_schema=False)
    async def events(request: Request) -> Response:
        return sse(request, agent.status)

    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")


def _object_routes(r: APIRouter, agent: NodeAgent) -> None:
    @r.get(
        "/v1/objects/{object_id}",
        tags=["objects"],
        summary="the endpoints a TARS client of this node gets (blocking with ?index&wait)",
    )
    async def get_object(
        object_id: str,
        index: Annotated[
            int | None,
            Query(ge=0, description="block until the object's index passes this one"),
        ] = None,
        wait: Annotated[
            str | None,
            Query(description="longest blocking wait: 30s, 500ms, 2m or seconds (max 300 s)"),
        ] = None,
        caller: Annotated[
            str | None,
            Query(description="answer as findObjectByIdInSameGroup for this caller IP"),
        ] = None,
    ) -> Response:
        try:
            validate_object_id(object_id)
        except EndpointSyntaxError as exc:
            raise ValidationError(str(exc)) from exc
        if caller is not None:
            _check_ip(caller)
        timeout = parse_wait(wait) if wait is not None else None
        if timeout is not None and index is None:
            raise ValidationError("wait needs index: give ?index= from an earlier answer")
        if not agent.has_data():
            return error_response(503, NO_DATA)
        if index is not None:
            await agent.watch.wait(object_id, index, DEFAULT_WAIT if timeout is None else timeout)
        body = _answer(agent, object_id, caller)
        return JSONResponse(body, headers={INDEX_HEADER: str(body["index"])})


def _check_ip(caller: str) -> None:
    try:
        ipaddress.ip_address(caller)
    except ValueError as exc:
        raise ValidationError(f"caller must be an IP address, got {caller!r}") from exc


def _answer(agent: NodeAgent, object_id: str, caller: str | None) -> Json:
    """The QueryF answer as this node's ServerObj gives it, decoded (one event-loop step:
    the index and the lists are of the same replica state)."""
    if caller is None:
        method, data = FIND_4ANY, agent.answerer.answer(QueryMethod.FIND_4ANY, object_id, "")
    else:
        method = FIND_IN_SAME_GROUP
        data = agent.answerer.answer(QueryMethod.IN_SAME_GROUP, object_id, caller)
    _ret, active, inactive = method.decode_result(data)
    return {
        "object_id": object_id,
        "index": agent.watch.index_of(object_id),
        "known": bool(agent.catalog.get_object(object_id)),
        "function": method.name,
        "caller": caller,
        "stale": agent.stale,
        "active": [_endpoint(e) for e in active],
        "inactive": [_endpoint(e) for e in inactive],
    }


def _endpoint(ep: EndpointF) -> Json:
    try:
        text = format_endpoint(Endpoint.from_endpointf(ep))
    except EndpointSyntaxError:
        text = f"{ep.host}:{ep.port}"
    return dataclasses.asdict(ep) | {"endpoint": text}
