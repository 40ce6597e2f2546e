"""The registry's dashboard (``/``) and the node agent's status page, in the browser.

Server-rendered Jinja2 templates plus one small hand-written script
(``static/dashboard.js``, no framework, no build step: the wheel ships it as is). Live
updates come over Server-Sent Events (``/ui/events``): the pages only ever need a
one-way feed of the same JSON the first render used, EventSource reconnects by itself,
and it is plain HTTP through any proxy. The drain panel is the exception: it POSTs to the
admin API with the token the operator typed (EventSource can neither POST nor send a
header) and reads the API's JSON-lines progress with ``fetch``.

Every figure comes from :mod:`tarscascade.admin.dashboard.views`, which reads what the
admin API serves, so the page and the API cannot disagree. The routes are not in the
OpenAPI document: they are pages, not API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tarscascade import __version__
from tarscascade.admin.answers import drain_status, endpoint_string
from tarscascade.admin.dashboard import views
from tarscascade.errors import EndpointSyntaxError, NotFoundError, ValidationError
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.listing import ObjectListing
from tarscascade.wire.endpoint import validate_object_id

__all__ = ["STATIC_DIR", "mount_dashboard", "render", "sse"]

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TICK_S = 1.0
OBJECTS_PAGE = 50

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["tojson_attr"] = lambda v: json.dumps(v, separators=(",", ":"))


def render(template: str, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(version=__version__, **context)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def sse(
    request: Request, payload: Callable[[], dict[str, Any]], tick: float = TICK_S
) -> StreamingResponse:
    """``payload()`` as one ``data:`` event a tick, until the browser goes away."""

    async def events() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        while True:
            body = json.dumps(payload(), separators=(",", ":"))
            yield f"data: {body}\n\n".encode()
            await asyncio.sleep(tick)
            if await request.is_disconnected():
                return

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def mount_dashboard(app: Any, admin: RegistryAdmin, listing: ObjectListing) -> None:
    """Add the dashboard's pages, feed and static files to the registry's app."""
    # the app's route class: its rules (admin/http.py's DeclaredQueryRoute) hold here too
    router = APIRouter(include_in_schema=False, route_class=app.router.route_class)
    board = views.Board(admin)

    @router.get("/", response_class=HTMLResponse)
    async def fleet_page() -> HTMLResponse:
        return render("fleet.html", page="fleet", fleet=board.fleet())

    @router.get("/ui/tree", response_class=HTMLResponse)
    async def tree_page(
        q: Annotated[str, Query(max_length=128)] = "",
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    ) -> HTMLResponse:
        tree = board.tree_page(q, page)
        return render("tree.html", page="tree", tree=tree)

    @router.get("/ui/objects", response_class=HTMLResponse)
    async def objects_page(
        q: Annotated[str, Query(max_length=256)] = "",
        cursor: Annotated[str, Query(max_length=256)] = "",
    ) -> HTMLResponse:
        listed = await listing.page(limit=OBJECTS_PAGE, cursor=cursor, prefix=q)
        return render("objects.html", page="objects", listed=listed, q=q)

    @router.get("/ui/objects/{object_id}", response_class=HTMLResponse)
    async def object_page(
        object_id: str,
        caller: Annotated[str, Query(max_length=64)] = "",
        set_id: Annotated[str, Query(alias="set", max_length=128)] = "",
        station: Annotated[str, Query(max_length=128)] = "",
    ) -> HTMLResponse:
        try:
            validate_object_id(object_id)
        except EndpointSyntaxError as exc:
            raise ValidationError(str(exc)) from exc
        try:
            endpoints = [admin.endpoint_view(r) for r in admin.get_object(object_id)]
        except NotFoundError:
            endpoints = []
        for e, r in zip(endpoints, admin.core.catalog.get_object(object_id), strict=False):
            e["text"] = endpoint_string(r)
        ask = {"caller": caller, "set_id": set_id, "station": station}
        return render(
            "object.html",
            page="objects",
            object_id=object_id,
            endpoints=endpoints,
            ask=ask,
            answer=views.client_view(admin, object_id, **ask),
            changes=views.recent_changes(admin, object_id),
            drains=[d for d in _drains(admin) if d["object_id"] == object_id][:5],
        )

    @router.get("/ui/events")
    async def events(
        request: Request,
        view: Annotated[str, Query(pattern="^(fleet|tree)$")] = "fleet",
        q: Annotated[str, Query(max_length=128)] = "",
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    ) -> Response:
        def payload() -> dict[str, Any]:
            out = {"fleet": board.fleet(), "drains": _drains(admin)[:5]}
            if view == "tree":
                out["tree"] = board.tree_page(q, page)
            return out

        return sse(request, payload)

    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")


def _drains(admin: RegistryAdmin) -> list[dict[str, Any]]:
    return [drain_status(admin, j) for j in admin.drains.jobs()]
