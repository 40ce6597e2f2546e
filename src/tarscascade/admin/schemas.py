"""Request bodies of the registry admin API.

Strict pydantic models: unknown fields are refused (a typo must not be silently
ignored), and types are not coerced (``"80"`` is not a port, ``1`` is not ``true``).
States are literals rather than the ``State`` enum because strict mode accepts an enum
only as an instance, and the body arrives as plain JSON values. Bounds here are the
cheap shape checks; RegistryAdmin does the semantic validation (names, set ids, IP
patterns, endpoint strings).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tarscascade.registry.batch import MAX_BATCH_OPS

INT32_MAX = 2**31 - 1
StateName = Literal["active", "inactive"]
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
UInt32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
Short = Annotated[str, Field(max_length=128)]
Flag = Annotated[int, Field(ge=0, le=1)]
AdapterName = Annotated[str, Field(max_length=255)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EndpointCreate(Body):
    endpoint: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4096,
            description='a TARS endpoint string, e.g. "tcp -h 10.0.0.1 -p 10000 -t 60000"',
        ),
    ]
    node: Short = ""
    set_id: Short | None = Field(None, description="name.area.group; default: the -s option")
    enable_group: bool = False
    ip_group_name: Short = ""
    bak_flag: Flag = 0
    state: StateName = "active"
    present_state: StateName = "active"
    adapter_name: AdapterName = Field(
        "", description='TARS adapter name; "" = the default, "<object id>Adapter"'
    )
    replace: bool = Field(False, description="overwrite an existing endpoint (else 409)")


class EndpointPatch(Body):
    """Any endpoint field but its identity (object id, host, port); absent means unchanged."""

    istcp: Annotated[int, Field(ge=0, le=2)] | None = None
    timeout: UInt32 | None = None
    node_name: Short | None = None
    set_id: Short | None = None
    enable_group: bool | None = None
    ip_group_name: Short | None = None
    grid: UInt32 | None = None
    qos: UInt32 | None = None
    weight: Annotated[int, Field(ge=-1, le=INT32_MAX)] | None = None
    weight_type: UInt32 | None = None
    auth_type: Flag | None = None
    bak_flag: Flag | None = None
    setting_state: StateName | None = None
    present_state: StateName | None = None
    adapter_name: AdapterName | None = None


class StateBody(Body):
    state: StateName


ObjectIdField = Annotated[str, Field(min_length=1, max_length=255)]
HostField = Annotated[str, Field(min_length=1, max_length=255)]
PortField = Annotated[int, Field(ge=1, le=65535)]


class BatchAdd(EndpointCreate):
    """Add an endpoint (the fields of ``POST /v1/objects/{id}/endpoints``)."""

    op: Literal["add"]
    object_id: ObjectIdField


class BatchUpdate(EndpointPatch):
    """Change fields of an endpoint (the fields of its ``PATCH``)."""

    op: Literal["update"]
    object_id: ObjectIdField
    host: HostField
    port: PortField


class BatchState(Body):
    """Set an endpoint active or inactive (no drain wait: follow with one if needed)."""

    op: Literal["state"]
    object_id: ObjectIdField
    host: HostField
    port: PortField
    state: StateName


class BatchRemove(Body):
    op: Literal["remove"]
    object_id: ObjectIdField
    host: HostField
    port: PortField


BatchOp = Annotated[BatchAdd | BatchUpdate | BatchState | BatchRemove, Field(discriminator="op")]


class BatchBody(Body):
    ops: Annotated[list[BatchOp], Field(min_length=1, max_length=MAX_BATCH_OPS)]


class NodeBody(Body):
    host: Annotated[str, Field(max_length=255)] = ""
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    state: StateName = "active"


class GroupRuleBody(Body):
    group_name: Annotated[str, Field(min_length=1, max_length=128)]
    allow_ip_rule: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=4096)]
    ip_order: Literal["allow_denny", "denny_allow"] = "allow_denny"
    denny_ip_rule: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=4096)] = (
        Field(default_factory=list)
    )


class GroupPriorityBody(Body):
    name: Short = ""
    group_list: Annotated[list[UInt32], Field(min_length=1, max_length=1024)]
    list_order: Int32 = 0
    station: Short = ""


class SettingBody(Body):
    value: Annotated[str, Field(max_length=4096)]


class DrainBody(Body):
    timeout: Annotated[
        float,
        Field(ge=0, le=600, description="seconds to wait for the nodes' acknowledgements"),
    ] = 30.0
    force: Annotated[
        bool,
        Field(
            description="drain the object's last active endpoint too (refused with 409"
            " otherwise: TARS clients keep their previous list on an empty answer)"
        ),
    ] = False
