"""Registry administration commands: a client of the registry's admin HTTP API.

``app`` is merged into the root command (``root.add_typer(app)``, no name), so these
read ``tarscascade objects``, ``tarscascade endpoint add ...`` and so on. Arguments are
checked locally where that is cheap (object ids, endpoint strings, group lists), so a
typo fails with exit 2 before anything is sent; everything else is the registry's to
validate. Every command takes the credential the same way (``--token``,
``--token-file``, ``TARSCASCADE_TOKEN``): reads are open today, but a script that passes
it everywhere keeps working when they are not.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from tarscascade.cli.registry_client import (
    DEFAULT_REGISTRY,
    EXIT_USAGE,
    AdminClient,
    IgnoreNotFoundOpt,
    JsonOpt,
    RegistryOpt,
    TokenFileOpt,
    TokenOpt,
    check_node_name,
    check_object_id,
    fail,
    parse_endpoint_arg,
    path,
    print_json,
    print_table,
    read_token,
    say,
    user_endpoint,
    warn,
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

#: objects per request when ``objects`` walks the paginated listing
LIST_PAGE = 1000


class StateArg(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


def _object_arg(value: str) -> str:
    return check_object_id(value)


ObjArg = Annotated[
    str,
    typer.Argument(metavar="OBJ", help="Servant object App.Server.Obj.", callback=_object_arg),
]
EndpointArg = Annotated[
    str, typer.Argument(metavar="ENDPOINT", help='TARS endpoint, e.g. "tcp -h 10.0.0.1 -p 80".')
]


def _endpoint_url(obj: str, endpoint: str, *rest: str) -> str:
    ep = parse_endpoint_arg(endpoint)
    return path("objects", obj, "endpoints", ep.host, ep.port, *rest)


# ---------------------------------------------------------------------------- reads


@app.command()
def objects(
    prefix: Annotated[
        str, typer.Option("--prefix", help="Only objects whose id starts with this.")
    ] = "",
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="At most this many (default: all, page by page)."),
    ] = None,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List objects with their endpoint counts."""
    client = AdminClient(registry, read_token(token, token_file))
    listed: list[dict[str, Any]] = []
    cursor: str | None = None
    revision = 0
    while True:
        want = LIST_PAGE if limit is None else min(LIST_PAGE, limit - len(listed))
        params: dict[str, Any] = {"limit": want, "prefix": prefix}
        if cursor:
            params["cursor"] = cursor
        page = client.get(path("objects"), params=params)
        revision = revision or page["revision"]
        listed += page["objects"]
        cursor = page.get("next_cursor")
        if not cursor or (limit is not None and len(listed) >= limit):
            break
    if as_json:
        print_json({"revision": revision, "objects": listed})
        return
    rows = [(o["object_id"], o["endpoints"], o["active"], o["inactive"]) for o in listed]
    print_table(None, ("object", "endpoints", "active", "inactive"), rows)


@app.command("object")
def object_(
    obj: ObjArg,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an object's endpoints."""
    data = AdminClient(registry, read_token(token, token_file)).get(path("objects", obj))
    if as_json:
        print_json(data)
        return
    rows = [
        (
            e["endpoint"],
            e["node_name"] or "(ungoverned)",
            e["adapter"],
            e["tars_version"],
            e["set_id"],
            e["ip_group_name"] + (" (enabled)" if e["enable_group"] else ""),
            e["bak_flag"],
            e["setting_state"],
            e["present_state"],
            "yes" if e["active"] else "no",
        )
        for e in data["endpoints"]
    ]
    columns = (
        "endpoint", "node", "adapter", "version", "set", "idc group", "bak", "setting",
        "present", "active",
    )  # fmt: skip
    print_table(obj, columns, rows)


@app.command()
def nodes(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List node agents: state, cascade connection, revisions held, lag, heartbeat."""
    data = AdminClient(registry, read_token(token, token_file)).get(path("nodes"))
    if as_json:
        print_json(data)
        return
    print_table(None, NODE_COLUMNS, [node_row(n) for n in data["nodes"]])


#: a node another registry of the tier shared a sighting of this recently is "connected" there
TIER_SEEN_RECENT_S = 60.0
NODE_COLUMNS = ("node", "address", "setting", "present", "cascade", "revisions", "lag", "heartbeat")


def node_row(n: dict[str, Any]) -> tuple[str, ...]:
    return (
        n["name"],
        _address(n),
        n["setting_state"],
        n["present_state"],
        _cascade(n),
        ", ".join(f"{cat} {v['revision']}" for cat, v in n.get("versions", {}).items()),
        _lag(n.get("lag", {})),
        _ago(n.get("last_heartbeat_age_s")),
    )


def _address(n: dict[str, Any]) -> str:
    if n["host"]:
        return f"{n['host']}:{n['port']}" if n["port"] else str(n["host"])
    return str(n.get("address", ""))


def _cascade(n: dict[str, Any]) -> str:
    if n.get("connected"):
        return f"via {n['via']}" if n.get("via") else "connected"
    seen = n.get("tier_seen_age_s")
    if seen is not None and n.get("present_state") == "active" and seen < TIER_SEEN_RECENT_S:
        return "other registry"  # heard by another registry of the tier, recently
    return "disconnected" if n.get("versions") else "-"


def _lag(lag: dict[str, int | None]) -> str:
    """``0`` when current everywhere, else the categories behind (``?``: another epoch)."""
    if not lag:
        return ""
    behind = [f"{cat} {'?' if n is None else n}" for cat, n in lag.items() if n != 0]
    return ", ".join(behind) or "0"


def _ago(age: float | None) -> str:
    return "never" if age is None else f"{age:.1f} s ago"


@app.command()
def status(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show versions and digests per category, and counts."""
    data = AdminClient(registry, read_token(token, token_file)).get(path("status"))
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


ADAPTER_HELP = (
    "TARS adapter name its server's keepAlive uses (t_adapter_conf.adapter_name); "
    'default "<object id>Adapter", "" resets to it.'
)


@endpoint_app.command("add")
def endpoint_add(
    obj: ObjArg,
    endpoint: EndpointArg,
    node: Annotated[
        str,
        typer.Option(
            "--node", help="Node agent hosting it (its keepAlive then governs the endpoint)."
        ),
    ] = "",
    enable_group: Annotated[bool, typer.Option("--enable-group", help="Use IDC groups.")] = False,
    group_name: Annotated[str, typer.Option("--group-name", help="Explicit IDC group.")] = "",
    set_id: Annotated[
        str | None, typer.Option("--set", help="Set NAME.AREA.GROUP (default: the -s option).")
    ] = None,
    bak: Annotated[bool, typer.Option("--bak", help="A backup endpoint.")] = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Add it inactive.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite if it exists.")] = False,
    adapter: Annotated[str, typer.Option("--adapter", help=ADAPTER_HELP)] = "",
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an endpoint to an object."""
    shown = user_endpoint(endpoint)
    if node:
        check_node_name(node)
    body = {
        "endpoint": endpoint,
        "node": node,
        "set_id": set_id,
        "enable_group": enable_group,
        "ip_group_name": group_name,
        "bak_flag": int(bak),
        "state": "inactive" if inactive else "active",
        "adapter_name": adapter,
        "replace": replace,
    }
    url = path("objects", obj, "endpoints")
    done = f'added "{endpoint.strip()}" to {obj}'
    write(registry, read_token(token, token_file), "POST", url, body, as_json, done)
    if not node:
        warn(
            f'"{shown}" has no --node: keepAlive will not govern it (it stays active'
            " until changed by hand, and a server announcing it through a node is refused)"
        )


@endpoint_app.command("rm")
def endpoint_rm(
    obj: ObjArg,
    endpoint: EndpointArg,
    ignore_not_found: IgnoreNotFoundOpt = False,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an endpoint (named by its host and port) from an object."""
    url = _endpoint_url(obj, endpoint)
    done = f'removed "{user_endpoint(endpoint)}" from {obj}'
    tok = read_token(token, token_file)
    write(registry, tok, "DELETE", url, None, as_json, done, ignore_not_found=ignore_not_found)


@endpoint_app.command("batch")
def endpoint_batch(
    file: Annotated[
        str, typer.Argument(help='A JSON file: {"ops": [...]} or the list itself; - : stdin.')
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply many endpoint writes at once, all or nothing (POST /v1/batch): ops "add",
    "update", "state", "remove" with the fields of the single commands' API."""
    import json
    import sys
    from pathlib import Path

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, ValueError) as exc:
        fail(f"cannot read a batch from {file}: {exc}", EXIT_USAGE)
    body = {"ops": doc} if isinstance(doc, list) else doc
    if not isinstance(body, dict) or not isinstance(body.get("ops"), list):
        fail(f'{file}: want {{"ops": [...]}} or a list of ops', EXIT_USAGE)
    done = f"applied {len(body['ops'])} ops in one transaction"
    write(registry, read_token(token, token_file), "POST", "/v1/batch", body, as_json, done)


@endpoint_app.command("state")
def endpoint_state(
    obj: ObjArg,
    endpoint: EndpointArg,
    state: Annotated[StateArg, typer.Argument(help="active or inactive")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set an endpoint active or inactive."""
    url = _endpoint_url(obj, endpoint, "state")
    body = {"state": state.value}
    done = f'"{user_endpoint(endpoint)}" of {obj} is {state.value}'
    write(registry, read_token(token, token_file), "PUT", url, body, as_json, done)


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
    adapter: Annotated[str | None, typer.Option("--adapter", help=ADAPTER_HELP)] = None,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
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
        "adapter_name": adapter,
    }
    if node:  # "" clears it
        check_node_name(node)
    body = {k: v for k, v in changes.items() if v is not None}
    if not body:
        fail("nothing to update: give at least one option (see --help)", EXIT_USAGE)
    url = _endpoint_url(obj, endpoint)
    done = f'updated "{user_endpoint(endpoint)}" of {obj}'
    write(registry, read_token(token, token_file), "PATCH", url, body, as_json, done)


@app.command()
def drain(
    obj: ObjArg,
    endpoint: EndpointArg,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0,
            max=600,
            metavar="SECONDS",
            help="How long to wait for the node agents' acknowledgements.",
        ),
    ] = 30.0,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Drain the object's last active endpoint too (TARS clients keep their"
            " previous list on an empty answer, so they would go on calling it).",
        ),
    ] = False,
    allow_offline: Annotated[
        bool,
        typer.Option(
            "--allow-offline",
            help="Exit 0 even when registered nodes are offline (not waited for).",
        ),
    ] = False,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set an endpoint inactive and wait until every node agent applied it.

    It waits for every registered node alive anywhere in the registry tier (whichever
    registry or relay it is connected to) and every node connected to this registry.
    On a terminal it shows a live progress bar (nodes acknowledged / total); with --json
    it prints JSON lines: "started", "progress" while nodes acknowledge, "result" last.
    Exits 0 once every node acknowledged; 4 when some did not within --timeout, or when
    registered nodes are offline (dead or unseen: they may still serve the old list)
    unless --allow-offline; the endpoint stays inactive either way. The object's last
    active endpoint is refused (exit 1) unless --force.
    """
    from tarscascade.cli.drain_view import run_drain

    url = _endpoint_url(obj, endpoint, "drain")
    client = AdminClient(registry, read_token(token, token_file))
    run_drain(
        client,
        url,
        obj,
        user_endpoint(endpoint),
        timeout,
        as_json=as_json,
        force=force,
        allow_offline=allow_offline,
    )
