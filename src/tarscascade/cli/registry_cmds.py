"""Registry administration commands: a client of the registry's admin HTTP API.

``app`` is merged into the root command (``root.add_typer(app)``, no name), so these
read ``tarscascade objects``, ``tarscascade endpoint add ...`` and so on. Arguments are
checked locally where that is cheap (endpoint strings, group lists), so a typo fails
with exit 2 before anything is sent; everything else is the registry's to validate.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

import typer

from tarscascade.cli.registry_client import (
    DEFAULT_REGISTRY,
    EXIT_USAGE,
    AdminClient,
    JsonOpt,
    RegistryOpt,
    TokenOpt,
    fail,
    parse_endpoint_arg,
    path,
    print_json,
    print_table,
    say,
    write,
)
from tarscascade.cli.registry_config_cmds import group_app, node_app, setting_app, settings
from tarscascade.cli.resolve_cmd import resolve

app = typer.Typer(no_args_is_help=True)
endpoint_app = typer.Typer(
    help="Add, change and remove endpoints of objects.", no_args_is_help=True
)
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(node_app, name="node")
app.add_typer(group_app, name="group")
app.add_typer(setting_app, name="setting")
app.command(help="List settings.")(settings)
app.command(help="Resolve an object over TARS (QueryF), as a TARS client sees it.")(resolve)


class StateArg(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


ObjArg = Annotated[str, typer.Argument(metavar="OBJ", help="Servant object App.Server.Obj.")]
EndpointArg = Annotated[
    str, typer.Argument(metavar="ENDPOINT", help='TARS endpoint, e.g. "tcp -h 10.0.0.1 -p 80".')
]


def _endpoint_url(obj: str, endpoint: str, *rest: str) -> str:
    ep = parse_endpoint_arg(endpoint)
    return path("objects", obj, "endpoints", ep.host, ep.port, *rest)


# ---------------------------------------------------------------------------- reads


@app.command()
def objects(registry: RegistryOpt = DEFAULT_REGISTRY, as_json: JsonOpt = False) -> None:
    """List objects with their endpoint counts."""
    data = AdminClient(registry).get(path("objects"))
    if as_json:
        print_json(data)
        return
    rows = [(o["object_id"], o["endpoints"], o["active"], o["inactive"]) for o in data["objects"]]
    print_table(None, ("object", "endpoints", "active", "inactive"), rows)


@app.command("object")
def object_(
    obj: ObjArg, registry: RegistryOpt = DEFAULT_REGISTRY, as_json: JsonOpt = False
) -> None:
    """Show an object's endpoints."""
    data = AdminClient(registry).get(path("objects", obj))
    if as_json:
        print_json(data)
        return
    rows = [
        (
            e["endpoint"],
            e["node_name"],
            e["set_id"],
            e["ip_group_name"] + (" (enabled)" if e["enable_group"] else ""),
            e["bak_flag"],
            e["setting_state"],
            e["present_state"],
            "yes" if e["active"] else "no",
        )
        for e in data["endpoints"]
    ]
    columns = ("endpoint", "node", "set", "idc group", "bak", "setting", "present", "active")
    print_table(obj, columns, rows)


@app.command()
def nodes(registry: RegistryOpt = DEFAULT_REGISTRY, as_json: JsonOpt = False) -> None:
    """List node agents."""
    data = AdminClient(registry).get(path("nodes"))
    if as_json:
        print_json(data)
        return
    rows = [
        (
            n["name"],
            f"{n['host']}:{n['port']}" if n["port"] else n["host"],
            n["setting_state"],
            n["present_state"],
            _when(n["last_heartbeat"]),
        )
        for n in data["nodes"]
    ]
    print_table(None, ("node", "address", "setting", "present", "last heartbeat"), rows)


def _when(ts: float) -> str:
    if not ts:
        return "never"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command()
def status(registry: RegistryOpt = DEFAULT_REGISTRY, as_json: JsonOpt = False) -> None:
    """Show versions and digests per category, and counts."""
    data = AdminClient(registry).get(path("status"))
    if as_json:
        print_json(data)
        return
    say(f"epoch {data['epoch']}  revision {data['revision']}")
    counts = data["counts"]
    shown = {"objects": f"{counts['objects']} (endpoints: {counts['endpoints']})"}
    rows = [
        (name, c["version"]["revision"], c["digest"], shown.get(name, counts.get(name, "")))
        for name, c in data["categories"].items()
    ]
    print_table(None, ("category", "revision", "digest", "records"), rows)
    cache = data["answer_cache"]
    say(f"answer cache: {cache['entries']} entries, {cache['hits']} hits, {cache['misses']} misses")


# ---------------------------------------------------------------------------- endpoints


@endpoint_app.command("add")
def endpoint_add(
    obj: ObjArg,
    endpoint: EndpointArg,
    node: Annotated[str, typer.Option("--node", help="Node agent hosting it.")] = "",
    enable_group: Annotated[bool, typer.Option("--enable-group", help="Use IDC groups.")] = False,
    group_name: Annotated[str, typer.Option("--group-name", help="Explicit IDC group.")] = "",
    set_id: Annotated[
        str | None, typer.Option("--set", help="Set NAME.AREA.GROUP (default: the -s option).")
    ] = None,
    bak: Annotated[bool, typer.Option("--bak", help="A backup endpoint.")] = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Add it inactive.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite if it exists.")] = False,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an endpoint to an object."""
    parse_endpoint_arg(endpoint)
    body = {
        "endpoint": endpoint,
        "node": node,
        "set_id": set_id,
        "enable_group": enable_group,
        "ip_group_name": group_name,
        "bak_flag": int(bak),
        "state": "inactive" if inactive else "active",
        "replace": replace,
    }
    url = path("objects", obj, "endpoints")
    write(registry, token, "POST", url, body, as_json, f"added {endpoint!r} to {obj}")


@endpoint_app.command("rm")
def endpoint_rm(
    obj: ObjArg,
    endpoint: EndpointArg,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an endpoint (named by its host and port) from an object."""
    url = _endpoint_url(obj, endpoint)
    write(registry, token, "DELETE", url, None, as_json, f"removed {endpoint!r} from {obj}")


@endpoint_app.command("state")
def endpoint_state(
    obj: ObjArg,
    endpoint: EndpointArg,
    state: Annotated[StateArg, typer.Argument(help="active or inactive")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set an endpoint active or inactive."""
    url = _endpoint_url(obj, endpoint, "state")
    body = {"state": state.value}
    write(registry, token, "PUT", url, body, as_json, f"{endpoint!r} of {obj} is {state.value}")


@endpoint_app.command("update")
def endpoint_update(
    obj: ObjArg,
    endpoint: EndpointArg,
    weight: Annotated[int | None, typer.Option("--weight", help="-1 = unset.")] = None,
    weight_type: Annotated[int | None, typer.Option("--weight-type")] = None,
    timeout: Annotated[int | None, typer.Option("--timeout", help="Idle timeout, ms.")] = None,
    grid: Annotated[int | None, typer.Option("--grid")] = None,
    qos: Annotated[int | None, typer.Option("--qos")] = None,
    auth_type: Annotated[int | None, typer.Option("--auth-type")] = None,
    node: Annotated[str | None, typer.Option("--node")] = None,
    set_id: Annotated[str | None, typer.Option("--set", help='"" clears the set.')] = None,
    group_name: Annotated[str | None, typer.Option("--group-name")] = None,
    enable_group: Annotated[
        bool | None, typer.Option("--enable-group/--no-enable-group", show_default=False)
    ] = None,
    bak: Annotated[bool | None, typer.Option("--bak/--no-bak", show_default=False)] = None,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change fields of an endpoint (named by its host and port); others stay."""
    changes: dict[str, Any] = {
        "weight": weight,
        "weight_type": weight_type,
        "timeout": timeout,
        "grid": grid,
        "qos": qos,
        "auth_type": auth_type,
        "node_name": node,
        "set_id": set_id,
        "ip_group_name": group_name,
        "enable_group": enable_group,
        "bak_flag": None if bak is None else int(bak),
    }
    body = {k: v for k, v in changes.items() if v is not None}
    if not body:
        fail("nothing to update: give at least one option (see --help)", EXIT_USAGE)
    url = _endpoint_url(obj, endpoint)
    write(registry, token, "PATCH", url, body, as_json, f"updated {endpoint!r} of {obj}")
