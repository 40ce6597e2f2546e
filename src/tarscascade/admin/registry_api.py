"""The registry's admin HTTP API: JSON under ``/v1``, ``/healthz``, ``/metrics``, OpenAPI.

Every route goes through :class:`RegistryAdmin`, which validates before writing; this
module adds the HTTP shape (paths, strict bodies, status codes) and nothing else. Write
answers carry the store ``revision`` that contains the change, so a caller can wait for
a node agent to report that version, and ``applied`` (false: committed and durable, the
registry's catalog still catching up). Every write takes a precondition, ``?if_revision=R``
or ``If-Match: "<epoch>:<revision>"`` (the ``ETag`` of a read): it applies only if the
record did not change after that revision, else 409 and nothing changes. Handlers are
``async def`` on purpose: the catalog is mutated on the event loop, and a sync handler
would read it from a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Security
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer

from tarscascade import __version__
from tarscascade.admin.answers import drain_status, drained, endpoint_view
from tarscascade.admin.credentials_api import add_credential_routes
from tarscascade.admin.dashboard import mount_dashboard
from tarscascade.admin.guard import (
    DEFAULT_MAX_BODY,
    GuardMiddleware,
    UnsafeListenError,
    check_listen_safety,
)
from tarscascade.admin.http import (
    FASTAPI_TELEMETRY_OFF,
    DeclaredQueryRoute,
    RequestMetricsMiddleware,
    error_response,
    install_error_handlers,
)
from tarscascade.admin.metrics import RegistryMetrics
from tarscascade.admin.models import (
    READ_ERRORS,
    WRITE_ERRORS,
    BatchWritten,
    DrainAnswer,
    DrainList,
    DrainStatus,
    EndpointView,
    EndpointWritten,
    Health,
    NodeList,
    NodeView,
    NodeWritten,
    ObjectDetail,
    ObjectList,
    PriorityList,
    PriorityWritten,
    Revision,
    RuleList,
    RuleWritten,
    SettingList,
    SettingModel,
    SettingWritten,
    Status,
    errors,
)
from tarscascade.admin.schemas import (
    INT32_MAX,
    BatchAdd,
    BatchBody,
    BatchOp,
    BatchRemove,
    BatchState,
    DrainBody,
    EndpointCreate,
    EndpointPatch,
    GroupPriorityBody,
    GroupRuleBody,
    NodeBody,
    SettingBody,
    StateBody,
)
from tarscascade.cascade import NodeState
from tarscascade.errors import ConflictError, NotFoundError, ValidationError
from tarscascade.model import (
    Category,
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    State,
    record_fields,
)
from tarscascade.registry.admin_ops import (
    RegistryAdmin,
    WriteResult,
    validate_name,
    validate_node_name,
)
from tarscascade.registry.batch import (
    MAX_BATCH_OPS,
    AddEndpoint,
    BatchItem,
    RemoveEndpoint,
    UpdateEndpoint,
    apply_batch,
)
from tarscascade.registry.drains import DrainJob
from tarscascade.registry.listing import MAX_LIMIT, ObjectListing, ObjectPage
from tarscascade.registry.node_auth import NodeAuthority
from tarscascade.store import Expect
from tarscascade.wire.endpoint import validate_object_id

__all__ = ["ImporterApi", "UnsafeListenError", "check_listen_safety", "create_registry_app"]


class ImporterApi(Protocol):
    """What the API needs of a routing importer (the db_tars importer)."""

    held: Any

    def status(self) -> dict[str, Any]: ...

    async def confirm(self, timeout: float = ...) -> bool: ...

    async def reload(self, timeout: float = ...) -> None: ...


Json = dict[str, Any]
Port = Annotated[int, Path(ge=1, le=65535)]
RecordId = Annotated[int, Path(ge=0, le=INT32_MAX)]

# Documents the scheme in OpenAPI; the check itself is GuardMiddleware's (before parsing).
_bearer = HTTPBearer(auto_error=False, description="the admin token, needed for writes")
WRITE = [Security(_bearer)]


async def precondition(
    if_revision: Annotated[
        int | None,
        Query(ge=0, description="apply only if the record did not change after this revision"),
    ] = None,
    if_match: Annotated[
        str | None,
        Header(description='an ETag of a read, "<epoch>:<revision>": the same, in that epoch'),
    ] = None,
) -> Expect | None:
    """``?if_revision=R`` or ``If-Match: "<epoch>:<revision>"`` as a store precondition."""
    if if_match is None:
        return None if if_revision is None else Expect(if_revision)
    if if_revision is not None:
        raise ValidationError("give one precondition: ?if_revision= or If-Match, not both")
    tag = if_match.strip()
    tag = tag[2:] if tag.startswith("W/") else tag
    epoch, sep, revision = tag.strip('"').rpartition(":")
    if "," in tag or not sep or not epoch or not revision.isdigit():
        raise ValidationError(
            f'If-Match takes one ETag of a read, "<epoch>:<revision>", not {if_match!r}'
        )
    return Expect(int(revision), epoch)


Precondition = Annotated[Expect | None, Depends(precondition)]


def _etag(admin: RegistryAdmin, response: Response) -> None:
    response.headers["ETag"] = f'"{admin.core.epoch}:{admin.core.revision}"'


DESCRIPTION = """Administer a tarscascade registry: servant objects and their endpoints,
node agents, IDC group rules and priorities (stations), settings, drains.

Reads are open. When the registry has an admin token, every write (POST, PUT, PATCH,
DELETE) needs `Authorization: Bearer <token>`. Errors are the `Error` model,
`{"error": "...", "reason": "..."}`, with a 4xx status (or 503 when the database is
unavailable), and change nothing. Request validation errors are 400, never 422; so is
a query parameter the route does not declare (a misspelled `?if_revison=` is refused,
not ignored), or a single-valued one given twice.

A write answered 2xx is committed: `revision` is the store revision that contains it, and
`applied: false` means the registry's catalog was still catching up when it answered (the
write is durable; it is served within a tail round). Optimistic concurrency: any write
accepts `?if_revision=R` or `If-Match: "<epoch>:<revision>"` (the `ETag` of a read) and
then applies only if its record did not change after revision R, else 409."""
NDJSON = "application/x-ndjson"
#: how often a streamed drain looks at the nodes' acknowledgements
DRAIN_POLL_S = 0.1
DRAIN_KEEPALIVE_S = 2.0
JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def create_registry_app(
    admin: RegistryAdmin,
    *,
    token: str | None,
    metrics: RegistryMetrics | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    importer: ImporterApi | None = None,
    authority: NodeAuthority | None = None,
) -> FastAPI:
    """The ASGI app; serve it with uvicorn after :func:`check_listen_safety`."""
    metrics = metrics if metrics is not None else RegistryMetrics(admin.core)
    app = FastAPI(
        title="tarscascade registry admin API",
        version=__version__,
        description=DESCRIPTION,
        telemetry=FASTAPI_TELEMETRY_OFF,
    )
    install_error_handlers(app)
    app.router.route_class = DeclaredQueryRoute  # before any route: each refuses unknown ?x=
    listing = ObjectListing(admin.core)
    app.state.listing = listing
    # Routes go straight onto app.router (no include_router): the metrics middleware
    # matches requests against app.router.routes to label them by route template.
    _ops_routes(app.router, admin, metrics)
    _status_routes(app.router, admin)
    _object_routes(app.router, admin, listing)
    for add_routes in (_drain_routes, _node_routes, _group_routes, _setting_routes):
        add_routes(app.router, admin)
    if importer is not None:
        _import_routes(app.router, importer)
    if authority is None:  # the routes say which mode this is (409 outside --node-auth)
        authority = NodeAuthority("shared", shared_token=token) if token else NodeAuthority("open")
    add_credential_routes(app.router, authority)
    mount_dashboard(app, admin, listing)
    _document_errors_truthfully(app)
    app.add_middleware(GuardMiddleware, token=token or None, max_body=max_body)
    # added last = outermost, so it also counts what the guard refuses
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, routes=app.router.routes)
    return app


def _document_errors_truthfully(app: FastAPI) -> None:
    """FastAPI documents ``422 HTTPValidationError`` on every route with parameters; this
    API answers 400 with the ``Error`` model instead (admin/http.py), so the generated
    document is corrected once: 422 goes, and so do its schemas."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict):
                    operation.get("responses", {}).pop("422", None)
        comps = schema.get("components", {}).get("schemas", {})
        comps.pop("HTTPValidationError", None)
        comps.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _ops_routes(r: APIRouter, admin: RegistryAdmin, metrics: RegistryMetrics) -> None:
    @r.get(
        "/healthz",
        tags=["operations"],
        summary="200 when the registry serves and its database can be trusted, else 503",
        description="503 while starting, when the SQLite file was deleted or replaced, and "
        "after `unhealthy_after` consecutive failed store operations (tail, writes); the "
        "`error` says why. The catalog keeps serving reads meanwhile.",
        response_model=Health,
        responses=errors(503),
    )
    async def healthz() -> Response:
        core = admin.core
        reason = core.health()
        if reason is not None:
            return error_response(503, reason)
        return JSONResponse(
            {
                "status": "ok",
                "revision": core.revision,
                "epoch": core.epoch,
                "epoch_confirmed": core.epoch_confirmed,
                "consecutive_store_failures": core.failures,
            }
        )

    @r.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus text exposition",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)


# ---------------------------------------------------------------------------- helpers


def _oid(object_id: str) -> str:
    validate_object_id(object_id)  # EndpointSyntaxError -> 400
    return object_id


def _committed(res: WriteResult) -> Json:
    out: Json = {"revision": res.revision, "applied": res.applied}
    if not res.applied:
        out["note"] = f"committed at revision {res.revision}; the registry's catalog is catching up"
    return out


def _written(admin: RegistryAdmin, res: WriteResult, key: str) -> Json:
    out = _committed(res)
    record = res.record
    if isinstance(record, EndpointRecord):
        out[key] = endpoint_view(admin, record)
    elif record is not None:
        out[key] = record_fields(record)
    return out


# ---------------------------------------------------------------------------- routes


def _status_routes(r: APIRouter, admin: RegistryAdmin) -> None:
    @r.get(
        "/v1/status",
        tags=["status"],
        summary="versions and digests per category, counts",
        response_model=Status,
    )
    async def status() -> Json:
        return admin.status()


def _object_routes(r: APIRouter, admin: RegistryAdmin, listing: ObjectListing) -> None:
    ep_path = "/v1/objects/{object_id}/endpoints/{host}/{port}"

    @r.get(
        "/v1/objects",
        tags=["objects"],
        summary="objects with endpoint counts, sorted by id, a page at a time",
        description="Served from a listing kept current per objects version (never a walk"
        " of the whole catalog per request). Pass `next_cursor` back as `cursor` for the"
        " next page; it is null on the last one.",
        response_model=ObjectList,
        responses=errors(400),
    )
    async def list_objects(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="objects per page")] = 100,
        cursor: Annotated[
            str, Query(max_length=256, description="the next_cursor of the previous page")
        ] = "",
        prefix: Annotated[
            str, Query(max_length=256, description="only ids starting with this")
        ] = "",
    ) -> Response:
        page = await listing.page(limit=limit, cursor=cursor, prefix=prefix)
        return Response(listing_json(page), media_type="application/json")

    @r.get(
        "/v1/objects/{object_id}",
        tags=["objects"],
        summary="an object's endpoints",
        response_model=ObjectDetail,
        responses=READ_ERRORS,
    )
    async def get_object(object_id: str, response: Response) -> Json:
        eps = admin.get_object(_oid(object_id))
        _etag(admin, response)
        return {
            "revision": admin.core.revision,
            "object_id": object_id,
            "endpoints": [endpoint_view(admin, e) for e in eps],
        }

    @r.post(
        "/v1/objects/{object_id}/endpoints",
        tags=["objects"],
        status_code=201,
        dependencies=WRITE,
        summary="add an endpoint from a TARS endpoint string (409 if it exists)",
        response_model=EndpointWritten,
        responses=WRITE_ERRORS,
    )
    async def add_endpoint(
        object_id: str, body: EndpointCreate, expect: Precondition = None
    ) -> Json:
        record = admin.build_endpoint(_oid(object_id), body.endpoint, **_create_options(body))
        res = await admin.add_endpoint(record, replace=body.replace, expect=expect)
        return _written(admin, res, "endpoint")

    @r.get(
        ep_path,
        tags=["objects"],
        summary="one endpoint (its ETag: for If-Match)",
        response_model=EndpointView,
        responses=READ_ERRORS,
    )
    async def get_endpoint(object_id: str, host: str, port: Port, response: Response) -> Json:
        view = endpoint_view(admin, admin.get_endpoint(_oid(object_id), host, port))
        _etag(admin, response)
        return view

    @r.patch(
        ep_path,
        tags=["objects"],
        dependencies=WRITE,
        summary="change endpoint fields",
        response_model=EndpointWritten,
        responses=WRITE_ERRORS,
    )
    async def update_endpoint(
        object_id: str, host: str, port: Port, body: EndpointPatch, expect: Precondition = None
    ) -> Json:
        changes = _patch_changes(body)
        res = await admin.update_endpoint(_oid(object_id), host, port, changes, expect=expect)
        return _written(admin, res, "endpoint")

    @r.put(
        ep_path + "/state",
        tags=["objects"],
        dependencies=WRITE,
        summary="active or inactive",
        response_model=EndpointWritten,
        responses=WRITE_ERRORS,
    )
    async def set_state(
        object_id: str, host: str, port: Port, body: StateBody, expect: Precondition = None
    ) -> Json:
        state = State(body.state)
        res = await admin.set_endpoint_state(_oid(object_id), host, port, state, expect=expect)
        return _written(admin, res, "endpoint")

    @r.post(
        ep_path + "/drain",
        tags=["objects"],
        dependencies=WRITE,
        summary="set inactive, then wait until every node acknowledged it",
        description="Answers once every registered node alive anywhere in the registry tier"
        " (connected to this registry, to another one on the database, or through a relay)"
        " and every node connected here acknowledged the objects version that has the"
        " endpoint inactive, or when `timeout` seconds passed; `missing` names the nodes"
        " that did not, `offline` the registered nodes not waited for (dead or unseen)."
        " The object's last active endpoint is refused (409) unless `force`."
        " An endpoint that is inactive already is not written again: the wait is then for"
        " the current objects version. With `Accept: application/x-ndjson` the answer is"
        " streamed as JSON lines: `started`, `progress` (acked_count, missing) whenever it"
        " moves, and `result` (this route's JSON answer) last.",
        response_model=DrainAnswer,
        responses={
            **WRITE_ERRORS,
            200: {
                "description": "the drain's result (or its progress, as JSON lines)",
                "content": {NDJSON: {"schema": {"type": "string"}}},
            },
        },
    )
    async def drain(
        request: Request, object_id: str, host: str, port: Port, body: DrainBody | None = None
    ) -> Any:
        body = body if body is not None else DrainBody()
        job = await admin.start_drain(_oid(object_id), host, port, body.timeout, force=body.force)
        if NDJSON in request.headers.get("accept", ""):
            return StreamingResponse(_drain_lines(admin, job), media_type=NDJSON)
        return drained(admin, job.id, await job.wait())

    @r.delete(
        ep_path,
        tags=["objects"],
        dependencies=WRITE,
        summary="remove an endpoint",
        response_model=Revision,
        responses=WRITE_ERRORS,
    )
    async def remove_endpoint(
        object_id: str, host: str, port: Port, expect: Precondition = None
    ) -> Json:
        return _committed(await admin.remove_endpoint(_oid(object_id), host, port, expect=expect))

    @r.post(
        "/v1/batch",
        tags=["objects"],
        dependencies=WRITE,
        summary="endpoint writes, all or nothing, in one transaction",
        description="Ops (`add`, `update`, `state`, `remove`; the fields of the single-endpoint"
        " routes) apply in order in one store transaction: one revision, one push to the"
        f" nodes. At most {MAX_BATCH_OPS} ops (and the body limit). Every op is validated"
        " before anything is written; a bad one (400) is named by its index, `ops[3]: ...`;"
        " a missing endpoint (404) or an added one that exists (409, unless `replace`) fails"
        " the whole batch. Nothing changes on any error.",
        response_model=BatchWritten,
        responses=WRITE_ERRORS,
    )
    async def batch(body: BatchBody) -> Json:
        items = []
        for i, op in enumerate(body.ops):
            try:
                items.append(_batch_item(op))
            except ValidationError as exc:
                raise ValidationError(f"ops[{i}]: {exc}") from exc
        res = await apply_batch(admin, items)
        out = _committed(WriteResult(res.revision, applied=res.applied))
        return {**out, "ops": res.ops, "events": res.events}


def _create_options(body: EndpointCreate) -> dict[str, Any]:
    """RegistryAdmin.build_endpoint's options from an add's body."""
    return {
        "node_name": body.node,
        "set_id": body.set_id,
        "enable_group": body.enable_group,
        "ip_group_name": body.ip_group_name,
        "bak_flag": body.bak_flag,
        "setting_state": State(body.state),
        "present_state": State(body.present_state),
        "adapter_name": body.adapter_name,
    }


_IDENTITY = frozenset({"op", "object_id", "host", "port"})


def _patch_changes(body: EndpointPatch) -> dict[str, Any]:
    """The fields a PATCH (or a batch's update) sets, validated: none null, at least one."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if k not in _IDENTITY}
    nulls = sorted(k for k, v in changes.items() if v is None)
    if nulls:
        raise ValidationError(f"fields cannot be null: {', '.join(nulls)}")
    if not changes:
        raise ValidationError("nothing to change: give at least one field")
    for name in ("setting_state", "present_state"):
        if name in changes:
            changes[name] = State(changes[name])
    return changes


def _batch_item(op: BatchOp) -> BatchItem:
    if isinstance(op, BatchAdd):
        return AddEndpoint(op.object_id, op.endpoint, _create_options(op), op.replace)
    if isinstance(op, BatchState):
        return UpdateEndpoint(op.object_id, op.host, op.port, {"setting_state": State(op.state)})
    if isinstance(op, BatchRemove):
        return RemoveEndpoint(op.object_id, op.host, op.port)
    return UpdateEndpoint(op.object_id, op.host, op.port, _patch_changes(op))


#: a progress line names at most this many missing nodes (the count is always there)
SHOWN_MISSING = 50


async def _drain_lines(admin: RegistryAdmin, job: DrainJob) -> AsyncIterator[bytes]:
    """The drain as JSON lines, as it happens (see the route's description)."""

    def line(event: Json) -> bytes:
        return json.dumps(event, separators=(",", ":")).encode() + b"\n"

    yield line(
        {
            "event": "started",
            "id": job.id,
            "revision": job.version.revision,
            "changed": job.changed,
            "nodes": job.nodes,
            "offline": job.offline,
            "timeout": job.timeout,
        }
    )
    last: tuple[int, bool] | None = None
    quiet = 0.0
    while True:
        p = job.progress()
        if (p.acked_count, p.done) != last or quiet >= DRAIN_KEEPALIVE_S:
            last, quiet = (p.acked_count, p.done), 0.0
            yield line(
                {
                    "event": "progress",
                    "id": job.id,
                    "total": len(job.nodes),
                    "acked_count": p.acked_count,
                    "missing_count": len(p.missing),
                    "missing": p.missing[:SHOWN_MISSING],
                    "elapsed_s": round(p.elapsed_s, 3),
                }
            )
        if p.done:
            break
        try:
            await asyncio.wait_for(job.wait(), DRAIN_POLL_S)
        except TimeoutError:
            quiet += DRAIN_POLL_S
    assert job.result is not None
    yield line({"event": "result", **drained(admin, job.id, job.result)})


def _drain_routes(r: APIRouter, admin: RegistryAdmin) -> None:
    @r.get(
        "/v1/drains",
        tags=["objects"],
        summary="running and recent drains with their progress or result",
        response_model=DrainList,
    )
    async def list_drains() -> Json:
        return {"drains": [drain_status(admin, j) for j in admin.drains.jobs()]}

    @r.get(
        "/v1/drains/{drain_id}",
        tags=["objects"],
        summary="one drain: progress while it waits, then its result",
        response_model=DrainStatus,
        responses=READ_ERRORS,
    )
    async def get_drain(drain_id: RecordId) -> Json:
        job = admin.drains.get(drain_id)
        if job is None:
            raise NotFoundError(
                [str(drain_id)], f"drain {drain_id} (only the recent ones are kept)"
            )
        return drain_status(admin, job)


def listing_json(page: ObjectPage) -> bytes:
    """A page of ``GET /v1/objects`` encoded directly (the ``ObjectList`` model, tested):
    pages are the hot read, and skipping the model's validation pass keeps each one to
    about a millisecond of the event loop and little garbage for the collector."""
    return orjson.dumps(
        {
            "revision": page.revision,
            "objects": [
                {
                    "object_id": row.object_id,
                    "endpoints": row.endpoints,
                    "active": row.active,
                    "inactive": row.inactive,
                }
                for row in page.rows
            ],
            "total": page.total,
            "next_cursor": page.next_cursor,
        }
    )


def _node_routes(r: APIRouter, admin: RegistryAdmin) -> None:
    def find(name: str) -> NodeRecord | None:
        validate_node_name(name)
        return next((n for n in admin.list_nodes() if n.name == name), None)

    def hub_states() -> dict[str, NodeState]:
        return admin.hub.node_states() if admin.hub is not None else {}

    @r.get(
        "/v1/nodes",
        tags=["nodes"],
        summary="every node agent: its record and the cascade's view (versions, lag)",
        response_model=NodeList,
    )
    async def list_nodes() -> Json:
        states = hub_states()
        records = {n.name: n for n in admin.list_nodes()}
        seen = await admin.tier_sightings()
        now = time.time()
        names = sorted(records.keys() | states.keys())
        nodes = [_node_view(n, records.get(n), states.get(n), now, seen.get(n)) for n in names]
        return {"revision": admin.core.revision, "nodes": nodes}

    @r.get(
        "/v1/nodes/{name}",
        tags=["nodes"],
        summary="one node agent",
        response_model=NodeView,
        responses=READ_ERRORS,
    )
    async def get_node(name: str, response: Response) -> Json:
        node = find(name)
        state = hub_states().get(name)
        if node is None and state is None:
            raise NotFoundError([name], f"node {name}")
        _etag(admin, response)
        seen = await admin.tier_sightings()
        return _node_view(name, node, state, time.time(), seen.get(name))

    @r.put(
        "/v1/nodes/{name}",
        tags=["nodes"],
        dependencies=WRITE,
        summary="add a node, or change the fields given (heartbeat state is kept)",
        response_model=NodeWritten,
        responses=WRITE_ERRORS,
    )
    async def put_node(
        name: str, body: NodeBody | None = None, expect: Precondition = None
    ) -> Json:
        given = body.model_dump(exclude_unset=True) if body is not None else {}
        if "state" in given:
            given["setting_state"] = State(given.pop("state"))
        res = await admin.patch_node(name, given, expect=expect)
        return _written(admin, res, "node")

    @r.delete(
        "/v1/nodes/{name}",
        tags=["nodes"],
        dependencies=WRITE,
        summary="remove a node",
        response_model=Revision,
        responses=WRITE_ERRORS,
    )
    async def remove_node(name: str, expect: Precondition = None) -> Json:
        name = validate_node_name(name)
        return _committed(await admin.remove_node(name, expect=expect))


def _node_view(
    name: str,
    record: NodeRecord | None,
    state: NodeState | None,
    now: float,
    tier_age: float | None = None,
) -> Json:
    """The registry's record (defaults when the node is known to the cascade only) and
    the hub's view: connection, versions held, lag per category, heartbeat age (the
    newest over the registry tier's sightings when that is newer)."""
    view = dataclasses.asdict(record if record is not None else NodeRecord(name))
    view["registered"] = record is not None
    # the age of the last heartbeat this registry heard; the record's ``last_heartbeat``
    # is the last registration, not a heartbeat (model.NodeRecord)
    beat = 0.0
    if state is None:
        view.update(connected=False, address="", via="", versions={}, lag={})
    else:
        beat = state.last_heartbeat
        view.update(
            connected=state.connected,
            address=state.address,
            via=state.via,
            versions={
                cat.value: {
                    "epoch": v.epoch,
                    "revision": v.revision,
                    "digest": f"{state.digests.get(cat, 0):032x}",
                }
                for cat in Category
                if (v := state.held.get(cat)) is not None
            },
            lag={cat.value: state.lag[cat] for cat in Category if cat in state.lag},
        )
    age = _age(beat, now)
    if tier_age is not None and (age is None or tier_age < age):
        age = round(max(0.0, tier_age), 3)
    view["last_heartbeat_age_s"] = age
    view["tier_seen_age_s"] = None if tier_age is None else round(max(0.0, tier_age), 3)
    view["last_ack_age_s"] = _age(state.last_ack, now) if state is not None else None
    return view


def _age(ts: float, now: float) -> float | None:
    return round(max(0.0, now - ts), 3) if ts else None


def _group_routes(r: APIRouter, admin: RegistryAdmin) -> None:
    @r.get("/v1/groups/rules", tags=["groups"], summary="IDC group rules", response_model=RuleList)
    async def list_rules() -> Json:
        rules = [dataclasses.asdict(g) for g in admin.list_group_rules()]
        return {"revision": admin.core.revision, "rules": rules}

    @r.put(
        "/v1/groups/rules/{group_id}",
        tags=["groups"],
        dependencies=WRITE,
        summary="set an IDC group rule (IP patterns a.b.c.d or a.b.c.*)",
        response_model=RuleWritten,
        responses=WRITE_ERRORS,
    )
    async def put_rule(
        group_id: RecordId, body: GroupRuleBody, expect: Precondition = None
    ) -> Json:
        rule = GroupRule(
            group_id,
            body.group_name,
            tuple(body.allow_ip_rule),
            body.ip_order,
            tuple(body.denny_ip_rule),
        )
        return _written(admin, await admin.put_group_rule(rule, expect=expect), "rule")

    @r.delete(
        "/v1/groups/rules/{group_id}",
        tags=["groups"],
        dependencies=WRITE,
        summary="remove an IDC group rule",
        response_model=Revision,
        responses=WRITE_ERRORS,
    )
    async def remove_rule(group_id: RecordId, expect: Precondition = None) -> Json:
        return _committed(await admin.remove_group_rule(group_id, expect=expect))

    @r.get(
        "/v1/groups/priorities",
        tags=["groups"],
        summary="group priorities and stations",
        response_model=PriorityList,
    )
    async def list_priorities() -> Json:
        prios = [dataclasses.asdict(p) for p in admin.list_group_priorities()]
        return {"revision": admin.core.revision, "priorities": prios}

    @r.put(
        "/v1/groups/priorities/{prio_id}",
        tags=["groups"],
        dependencies=WRITE,
        summary="set a group priority (an ordered group list, optionally a station)",
        response_model=PriorityWritten,
        responses=WRITE_ERRORS,
    )
    async def put_priority(
        prio_id: RecordId, body: GroupPriorityBody, expect: Precondition = None
    ) -> Json:
        prio = GroupPriority(
            prio_id, body.name, tuple(body.group_list), body.list_order, body.station
        )
        return _written(admin, await admin.put_group_priority(prio, expect=expect), "priority")

    @r.delete(
        "/v1/groups/priorities/{prio_id}",
        tags=["groups"],
        dependencies=WRITE,
        summary="remove a group priority",
        response_model=Revision,
        responses=WRITE_ERRORS,
    )
    async def remove_priority(prio_id: RecordId, expect: Precondition = None) -> Json:
        return _committed(await admin.remove_group_priority(prio_id, expect=expect))


def _import_routes(r: APIRouter, importer: ImporterApi) -> None:
    @r.get(
        "/v1/dbtars",
        tags=["db_tars"],
        summary="the db_tars importer: lease, held change, clock, counters, DB cost",
    )
    async def import_status() -> Json:
        return importer.status()

    @r.post(
        "/v1/dbtars/confirm",
        tags=["db_tars"],
        dependencies=WRITE,
        summary="apply the change the mass-change guard holds (409 when none is held)",
        description="The guard holds a db_tars load that would empty the catalog, delete"
        " or deactivate more than its share of endpoints. This applies the next full load"
        " as it is and answers once it has been written.",
    )
    async def confirm() -> Json:
        if importer.held is None or not await importer.confirm():
            raise ConflictError("the db_tars importer holds no change to confirm")
        return importer.status()

    @r.post(
        "/v1/dbtars/reload",
        tags=["db_tars"],
        dependencies=WRITE,
        summary="run a full load + diff of db_tars now (after a restore); 409 if not importing",
    )
    async def reload() -> Json:
        if not importer.status()["leader"]:
            raise ConflictError("this registry does not hold the db_tars importer lease")
        await importer.reload()
        return importer.status()


def _setting_routes(r: APIRouter, admin: RegistryAdmin) -> None:
    @r.get("/v1/settings", tags=["settings"], summary="every setting", response_model=SettingList)
    async def list_settings() -> Json:
        settings = [dataclasses.asdict(s) for s in admin.list_settings()]
        return {"revision": admin.core.revision, "settings": settings}

    @r.get(
        "/v1/settings/{name}",
        tags=["settings"],
        summary="one setting",
        response_model=SettingModel,
        responses=READ_ERRORS,
    )
    async def get_setting(name: str, response: Response) -> Json:
        validate_name("setting name", name)
        for s in admin.list_settings():
            if s.name == name:
                _etag(admin, response)
                return dataclasses.asdict(s)
        raise NotFoundError([name], f"setting {name}")

    @r.put(
        "/v1/settings/{name}",
        tags=["settings"],
        dependencies=WRITE,
        summary="set a setting",
        response_model=SettingWritten,
        responses=WRITE_ERRORS,
    )
    async def put_setting(name: str, body: SettingBody, expect: Precondition = None) -> Json:
        return _written(admin, await admin.put_setting(name, body.value, expect=expect), "setting")

    @r.delete(
        "/v1/settings/{name}",
        tags=["settings"],
        dependencies=WRITE,
        summary="remove a setting",
        response_model=Revision,
        responses=WRITE_ERRORS,
    )
    async def remove_setting(name: str, expect: Precondition = None) -> Json:
        name = validate_name("setting name", name)
        return _committed(await admin.remove_setting(name, expect=expect))
