"""Response models of the registry admin API: what the OpenAPI document promises.

Every route declares its answer (``response_model``) and its errors (``Error``, by
status), so a generated client gets types and the real error shape, and the
schemathesis run in the tests holds the server to them. Request bodies live in
:mod:`tarscascade.admin.schemas`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tarscascade.admin.schemas import StateName


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(Model):
    """Every error answer: one readable line, and a code for programs."""

    error: str = Field(description="what was wrong, one line")
    reason: Literal[
        "bad_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "no_route",
        "method_not_allowed",
        "conflict",
        "too_large",
        "internal",
        "unavailable",
        "error",
    ] = Field(description="not_found: the record does not exist; no_route: the path does not")


#: the error statuses each kind of route can answer, for ``responses=``
def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "bad request: invalid path, query or body; nothing changed",
        401: "the admin token is needed (Authorization: Bearer)",
        403: "wrong admin token",
        404: "no such record",
        409: "conflicts with existing data",
        413: "request body too large",
        503: "the database or the catalog is unavailable",
    }
    return {s: {"model": Error, "description": text[s]} for s in statuses}


READ_ERRORS = errors(400, 404)
WRITE_ERRORS = errors(400, 401, 403, 404, 409, 413, 503)


class Health(Model):
    status: Literal["ok"]
    revision: int
    epoch: str
    epoch_confirmed: bool = Field(
        description="false while the epoch is held for an operator (it loses many endpoints)"
    )
    consecutive_store_failures: int


class VersionModel(Model):
    epoch: str
    revision: int


class CategoryStatus(Model):
    version: VersionModel
    digest: str = Field(
        description="32 hex digits, the 128-bit keyed digest: equal content gives an equal digest"
    )


class AnswerCache(Model):
    entries: int
    hits: int
    misses: int


class LineageModel(Model):
    """The current epoch's lineage record (``tc_lineage``)."""

    epoch: str
    created_at: float
    reason: str
    confirmed: bool
    confirmed_at: float | None
    confirmed_by: str
    previous_epoch: str
    previous_revision: int
    previous_endpoints: int | None = Field(description="null: unknown")
    endpoints: int = Field(description="endpoints when the epoch began")
    base_revision: int


class TierStatus(Model):
    registry_id: str = Field(description="this registry's name in the tier's tables")
    judge: bool = Field(description="this registry judges node liveness (holds the lease)")
    judge_id: str = Field(description='the registry that judged at the last round ("": none)')
    drain_waits: int = Field(description="drains waiting in the tier, as of the last look")
    stats: dict[str, int]


class Status(Model):
    epoch: str
    revision: int
    epoch_confirmed: bool
    lineage: LineageModel
    categories: dict[str, CategoryStatus]
    counts: dict[str, int]
    stats: dict[str, int | float]
    answer_cache: AnswerCache
    tier: TierStatus | None = Field(
        default=None, description="the registry tier (several registries on one database)"
    )


class ObjectSummary(Model):
    object_id: str
    endpoints: int
    active: int
    inactive: int


class ObjectList(Model):
    revision: int = Field(description="the objects revision the listing reflects")
    objects: list[ObjectSummary]
    total: int = Field(description="objects matching the prefix")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: done")


class EndpointView(Model):
    object_id: str
    host: str
    port: int
    istcp: int
    timeout: int
    node_name: str
    set_id: str
    enable_group: bool
    ip_group_name: str
    grid: int
    qos: int
    weight: int
    weight_type: int
    auth_type: int
    bak_flag: int
    setting_state: StateName
    present_state: StateName
    adapter_name: str = Field(description='the TARS adapter; "" = the default')
    tars_version: str = Field(description="the TARS version its server reported")
    adapter: str = Field(description="the adapter name keepAlive uses (explicit or default)")
    active: bool = Field(description="what QueryF answers: both states active, node alive")
    endpoint: str = Field(description="as a TARS endpoint string")


class ObjectDetail(Model):
    revision: int
    object_id: str
    endpoints: list[EndpointView]


class Revision(Model):
    revision: int = Field(description="the store revision that contains the write")
    applied: bool = Field(
        True,
        description="false: committed and durable, but the registry's catalog was still "
        "catching up when it answered (it serves the write within a tail round)",
    )
    note: str | None = Field(None, description="why applied is false")


class BatchWritten(Revision):
    ops: int = Field(description="ops in the batch, all applied in one transaction")
    events: int = Field(description="changes logged (an update that changed nothing: none)")


class EndpointWritten(Revision):
    endpoint: EndpointView


class DrainAnswer(Model):
    id: int = Field(description="the drain's id (GET /v1/drains/{id})")
    revision: int
    version: VersionModel
    changed: bool = Field(description="false when it was inactive already")
    endpoint: EndpointView
    elapsed_s: float
    nodes: list[str] = Field(
        description="the nodes waited for: every registered node alive anywhere in the"
        " registry tier, and every node connected to this registry"
    )
    acked: list[str]
    missing: list[str] = Field(description="nodes that did not acknowledge in time")
    offline: list[str] = Field(
        description="registered nodes not waited for: judged dead or unseen for a node"
        " timeout (they may still serve the old list to their host)"
    )
    complete: bool = Field(description="every node waited for acknowledged")


class DrainStatus(Model):
    id: int
    object_id: str
    endpoint: str
    revision: int
    started_at: float = Field(description="unix seconds")
    timeout: float
    done: bool
    total: int
    acked_count: int
    missing: list[str]
    elapsed_s: float
    result: DrainAnswer | None


class DrainList(Model):
    drains: list[DrainStatus] = Field(description="running and recent drains, newest first")


class NodeRecordModel(Model):
    name: str
    host: str
    port: int
    setting_state: StateName
    present_state: StateName
    last_heartbeat: float = Field(
        description="unix seconds the registry last registered the node alive (not moved"
        " by heartbeats: see last_heartbeat_age_s); 0 = never"
    )


class HeldVersion(Model):
    epoch: str
    revision: int
    digest: str = Field(
        description="32 hex digits: the digest the node said it holds (the 128-bit keyed"
        " one; from a node speaking protocol 2 or older its legacy 64-bit one, zero-padded)"
    )


class NodeView(NodeRecordModel):
    registered: bool = Field(description="false: known to the cascade only")
    connected: bool
    address: str
    via: str = Field(description="the relay that reports it; empty for a direct session")
    versions: dict[str, HeldVersion]
    lag: dict[str, int | None] = Field(description="revisions behind; null: another epoch")
    last_heartbeat_age_s: float | None = Field(
        description="seconds since the node was last heard, by this registry or (newer) by"
        " any registry of the tier, whose sightings also count an idle node's open"
        " connection (docs/protocol.md, Idle heartbeats); null: never"
    )
    tier_seen_age_s: float | None = Field(
        default=None,
        description="seconds since any registry of the tier last shared a sighting of it",
    )
    last_ack_age_s: float | None


class NodeList(Model):
    revision: int
    nodes: list[NodeView]


class NodeWritten(Revision):
    node: NodeRecordModel


class RuleModel(Model):
    group_id: int
    group_name: str
    allow_ip_rule: list[str]
    ip_order: str
    denny_ip_rule: list[str]


class RuleList(Model):
    revision: int
    rules: list[RuleModel]


class RuleWritten(Revision):
    rule: RuleModel


class PriorityModel(Model):
    id: int
    name: str
    group_list: list[int]
    list_order: int
    station: str


class PriorityList(Model):
    revision: int
    priorities: list[PriorityModel]


class PriorityWritten(Revision):
    priority: PriorityModel


class SettingModel(Model):
    name: str
    value: str


class SettingList(Model):
    revision: int
    settings: list[SettingModel]


class SettingWritten(Revision):
    setting: SettingModel
