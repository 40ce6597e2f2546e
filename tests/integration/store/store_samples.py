"""Sample records for the store tests: every type, non-default values, awkward text."""

from __future__ import annotations

from typing import Any

from tarscascade.model import (
    EndpointRecord,
    GroupPriority,
    GroupRule,
    NodeRecord,
    Record,
    Setting,
    State,
)


def endpoint(i: int, obj: str = "App.Server.Obj", **changes: Any) -> EndpointRecord:
    fields: dict[str, Any] = {
        "object_id": obj,
        "host": f"10.0.{i // 256}.{i % 256}",
        "port": 10000 + i,
        "node_name": f"node-{i}",
    }
    fields.update(changes)
    return EndpointRecord(**fields)


def every_type() -> list[Record]:
    """One or more records of each type, with every field away from its default."""
    return [
        EndpointRecord(
            object_id="Ünïcode.Sërver.Obj",
            host="fe80::1",
            port=65535,
            istcp=2,
            timeout=60000,
            node_name="节点-1 🚀",
            set_id="app.sz.1",
            enable_group=True,
            ip_group_name="idc-深圳",
            grid=3,
            qos=7,
            weight=-1,
            weight_type=2,
            auth_type=1,
            bak_flag=1,
            setting_state=State.INACTIVE,
            present_state=State.INACTIVE,
        ),
        endpoint(1, weight=0),
        endpoint(2, obj="app.server.obj"),  # differs only in case from endpoint(2)
        endpoint(2),
        NodeRecord(
            name="node-1",
            host="192.168.1.7",
            port=19386,
            setting_state=State.INACTIVE,
            present_state=State.INACTIVE,
            last_heartbeat=1732531200.123456789,
        ),
        NodeRecord(name="node-2"),
        GroupRule(
            group_id=7,
            group_name="sz",
            allow_ip_rule=("10.0.0.*", "10.0.1.5"),
            ip_order="denny_allow",
            denny_ip_rule=("10.0.0.9",),
        ),
        GroupRule(group_id=8, group_name="empty"),
        GroupPriority(id=1, name="prefer-sz", group_list=(7, 8), list_order=2, station="st-1"),
        GroupPriority(id=2),
        Setting(name="registry.addresses", value="tcp -h 10.0.0.1 -p 17890\n" * 50),
        Setting(name="empty", value=""),
    ]
