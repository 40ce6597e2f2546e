"""A small TARS fleet written into a db_tars the way TarsWeb and tarsnode would."""

from __future__ import annotations

from tarscascade.model import ChangeEvent, EndpointRecord, Op
from tests.integration.dbtars.writers import Adapter, TarsWriters

APP = "App"
SRV = "Srv"
OBJ = "App.Srv.Obj"
NODES = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
#: Other servers, enough that one action on App.Srv never trips the mass-change guard.
BULK = tuple(f"Bulk{i}" for i in range(12))
BULK_NODE = "10.0.1.1"


def deploy_fleet(w: TarsWriters, *, age_hours: int = 1) -> None:
    """App.Srv on three nodes (started), twelve one-node servers; then every row aged.

    Aged rows (registry_timestamp an hour back, like an installation's steady state) are
    outside the poll window, so a test sees exactly what its own action bumps.
    """
    for node in NODES:
        w.deploy(APP, SRV, node, [Adapter(f"{OBJ}Adapter", OBJ, 10001)])
        w.start(APP, SRV, node)
    for i, name in enumerate(BULK):
        w.deploy(
            APP, name, BULK_NODE, [Adapter(f"App.{name}.ObjAdapter", f"App.{name}.Obj", 20000 + i)]
        )
        w.start(APP, name, BULK_NODE)
    age(w, age_hours)


def age(w: TarsWriters, hours: int = 1) -> None:
    for table in ("t_server_conf", "t_adapter_conf"):
        w.sql(f"UPDATE {table} SET registry_timestamp = NOW() - INTERVAL %s HOUR", (hours,))


def key(node: str, port: int = 10001, obj: str = OBJ) -> str:
    return f"{obj}|{node}|{port}"


def summary(events: list[ChangeEvent]) -> list[tuple[str, str, str]]:
    """``(op, key, state)`` per event; state is ``active``/``inactive`` for puts."""
    out = []
    for e in events:
        if e.op is Op.PUT and isinstance(e.record, EndpointRecord):
            r = e.record
            up = r.setting_state.value == "active" and r.present_state.value == "active"
            out.append(("put", e.key, "active" if up else "inactive"))
        else:
            out.append((e.op.value, e.key, ""))
    return out
