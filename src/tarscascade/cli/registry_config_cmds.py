"""Registry configuration commands: node agents, IDC groups and stations, settings.

Sub-apps ``node``, ``group`` (with ``rule`` and ``priority``) and ``setting``, and the
``settings`` listing; :mod:`tarscascade.cli.registry_cmds` mounts them on the root.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from tarscascade.cli.registry_client import (
    DEFAULT_REGISTRY,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    AdminClient,
    IgnoreNotFoundOpt,
    JsonOpt,
    RegistryOpt,
    TokenFileOpt,
    TokenOpt,
    check_node_name,
    fail,
    path,
    print_json,
    print_table,
    read_token,
    say,
    write,
)

# The bare ``tarscascade node --name ... --upstream ...`` still runs an agent (a
# deprecated spelling of ``tarscascade agent``; serve_cmds installs that callback).
node_app = typer.Typer(help="Node records at the registry: ls, show, add, rm.")
group_app = typer.Typer(help="IDC group rules, priorities and stations.", no_args_is_help=True)
rule_app = typer.Typer(help="Add and remove IDC group rules.", no_args_is_help=True)
priority_app = typer.Typer(help="Add and remove group priorities.", no_args_is_help=True)
setting_app = typer.Typer(help="Set and remove settings.", no_args_is_help=True)
group_app.add_typer(rule_app, name="rule")
group_app.add_typer(priority_app, name="priority")


# ---------------------------------------------------------------------------- reads


def settings(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List settings."""
    data = AdminClient(registry, read_token(token, token_file)).get(path("settings"))
    if as_json:
        print_json(data)
        return
    print_table(None, ("setting", "value"), [(s["name"], s["value"]) for s in data["settings"]])


@group_app.command()
def rules(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List IDC group rules."""
    data = AdminClient(registry, read_token(token, token_file)).get(path("groups", "rules"))
    if as_json:
        print_json(data)
        return
    rows = [
        (
            r["group_id"],
            r["group_name"],
            "|".join(r["allow_ip_rule"]),
            r["ip_order"],
            "|".join(r["denny_ip_rule"]),
        )
        for r in data["rules"]
    ]
    print_table(None, ("id", "name", "allow", "order", "deny"), rows)


@group_app.command()
def priorities(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List group priorities and stations."""
    data = AdminClient(registry, read_token(token, token_file)).get(path("groups", "priorities"))
    if as_json:
        print_json(data)
        return
    rows = [
        (p["id"], p["name"], ",".join(map(str, p["group_list"])), p["list_order"], p["station"])
        for p in data["priorities"]
    ]
    print_table(None, ("id", "name", "groups", "order", "station"), rows)


# ---------------------------------------------------------------------------- nodes


@node_app.command("ls")
def node_ls(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List node agents (the same as ``tarscascade nodes``)."""
    from tarscascade.cli.registry_cmds import nodes

    nodes(registry=registry, token=token, token_file=token_file, as_json=as_json)


@node_app.command("show")
def node_show(
    name: Annotated[str, typer.Argument(help="Node name.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One node agent: its record and what the cascade knows of it."""
    from tarscascade.cli.registry_cmds import NODE_COLUMNS, node_row

    check_node_name(name)
    data = AdminClient(registry, read_token(token, token_file)).get(path("nodes", name))
    if as_json:
        print_json(data)
        return
    print_table(None, NODE_COLUMNS, [node_row(data)])


@node_app.command("add")
def node_add(
    name: Annotated[str, typer.Argument(help="Node name.")],
    host: Annotated[
        str | None,
        typer.Option("--host", help="Node agent address (also the host it may announce on)."),
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Node agent port.")] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Add it inactive.")] = False,
    allow: Annotated[
        str | None,
        typer.Option("--allow", help='Objects it may announce, e.g. "App.*,Pay.Core.PayObj".'),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", help="Write the node's new secret here (mode 0600)."),
    ] = None,
    no_secret: Annotated[
        bool, typer.Option("--no-secret", help="Do not issue a (new) node secret.")
    ] = False,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a node agent (or change the options given) and issue its secret.

    A registry with --node-auth answers with a new secret for the node, shown once
    (or written to --secret-file); it replaces any older one.
    """
    check_node_name(name)
    body: dict[str, Any] = {"state": "inactive" if inactive else "active"}
    if host is not None:
        body["host"] = host
    if port is not None:
        body["port"] = port
    from tarscascade.catalog.announce import announce_setting

    client = AdminClient(registry, read_token(token, token_file))
    result = client.request("PUT", path("nodes", name), body)
    out: dict[str, Any] = {"revision": result.get("revision"), "node": result.get("node")}
    if allow is not None:
        setting = path("settings", announce_setting(name))
        out["allow"] = client.request("PUT", setting, {"value": allow}).get("revision")
    if not no_secret:
        out["credential"] = _issue_secret(client, name, [host] if host else [], secret_file)
    if as_json:
        print_json(out)
        return
    say(f"node {name} added (revision {out['revision']})")
    cred = out.get("credential")
    if cred is None:
        return
    if "secret" in cred:
        say(f"secret for node {name} (shown once; put it in its --token-file):")
        say(cred["secret"])
    elif "secret_file" in cred:
        say(f"secret for node {name} written to {cred['secret_file']}")
    else:
        say(cred["note"])


def _issue_secret(
    client: AdminClient, name: str, hosts: list[str], secret_file: Path | None
) -> dict[str, Any]:
    """POST the node's credentials; a registry without --node-auth answers 409 (a note)."""
    import httpx

    url = path("nodes", name, "credentials")
    try:
        rsp = httpx.post(
            client.base + url, json={"hosts": hosts}, headers=client.headers, timeout=10.0
        )
    except httpx.HTTPError as exc:
        fail(f"cannot issue the secret at {client.base}: {exc}", EXIT_UNREACHABLE)
    if rsp.status_code in (404, 409):  # 404: a registry older than node credentials
        return {"note": "no secret issued: the registry does not use per-node credentials"}
    if rsp.status_code >= 400:
        fail(f"refused (HTTP {rsp.status_code}): {rsp.text.strip()[:200]}", EXIT_REFUSED)
    data = rsp.json()
    if secret_file is None:
        return data  # type: ignore[no-any-return]
    try:
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        fail(f"cannot create --secret-file {str(secret_file)!r}: {exc}", EXIT_USAGE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data["secret"] + "\n")
    return {k: v for k, v in data.items() if k != "secret"} | {"secret_file": str(secret_file)}


@node_app.command("rm")
def node_rm(
    name: Annotated[str, typer.Argument(help="Node name.")],
    ignore_not_found: IgnoreNotFoundOpt = False,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a node agent (and revoke its secret: its session ends)."""
    import httpx

    check_node_name(name)
    url = path("nodes", name)
    tok = read_token(token, token_file)
    client = AdminClient(registry, tok)
    with contextlib.suppress(httpx.HTTPError):  # 404 / 409: it had none to revoke
        httpx.delete(client.base + path("nodes", name, "credentials"), headers=client.headers)
    done = f"node {name} removed"
    write(registry, tok, "DELETE", url, None, as_json, done, ignore_not_found=ignore_not_found)


# ---------------------------------------------------------------------------- groups


@rule_app.command("add")
def rule_add(
    group_id: Annotated[int, typer.Argument(metavar="ID", help="Group id.")],
    name: Annotated[str, typer.Argument(help="Group name.")],
    allow: Annotated[
        str, typer.Option("--allow", help='IP patterns, "|"-separated: "10.0.1.*|10.0.2.3".')
    ],
    deny: Annotated[str, typer.Option("--deny", help="IP patterns to exclude.")] = "",
    order: Annotated[str, typer.Option("--order", help="allow_denny or denny_allow.")] = (
        "allow_denny"
    ),
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set an IDC group rule: hosts matching the patterns belong to the group."""
    body = {
        "group_name": name,
        "allow_ip_rule": _split(allow, "|"),
        "denny_ip_rule": _split(deny, "|"),
        "ip_order": order,
    }
    url = path("groups", "rules", group_id)
    write(
        registry,
        read_token(token, token_file),
        "PUT",
        url,
        body,
        as_json,
        f"group rule {group_id} set",
    )


@rule_app.command("rm")
def rule_rm(
    group_id: Annotated[int, typer.Argument(metavar="ID", help="Group id.")],
    ignore_not_found: IgnoreNotFoundOpt = False,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an IDC group rule."""
    url = path("groups", "rules", group_id)
    tok = read_token(token, token_file)
    done = f"group rule {group_id} removed"
    write(registry, tok, "DELETE", url, None, as_json, done, ignore_not_found=ignore_not_found)


@priority_app.command("add")
def priority_add(
    prio_id: Annotated[int, typer.Argument(metavar="ID", help="Priority id.")],
    groups: Annotated[str, typer.Option("--groups", help="Group ids in order: 1,2,3.")],
    order: Annotated[int, typer.Option("--order", help="Position among priorities.")] = 0,
    station: Annotated[str, typer.Option("--station", help="Station name.")] = "",
    name: Annotated[str, typer.Option("--name", help="Priority name.")] = "",
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a group priority: an ordered group list, optionally a station."""
    try:
        group_list = [int(g) for g in _split(groups, ",")]
    except ValueError:
        fail(f"--groups must be comma-separated group ids, got {groups!r}", EXIT_USAGE)
    body = {"name": name, "group_list": group_list, "list_order": order, "station": station}
    url = path("groups", "priorities", prio_id)
    write(
        registry,
        read_token(token, token_file),
        "PUT",
        url,
        body,
        as_json,
        f"group priority {prio_id} set",
    )


@priority_app.command("rm")
def priority_rm(
    prio_id: Annotated[int, typer.Argument(metavar="ID", help="Priority id.")],
    ignore_not_found: IgnoreNotFoundOpt = False,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a group priority."""
    url = path("groups", "priorities", prio_id)
    tok = read_token(token, token_file)
    done = f"group priority {prio_id} removed"
    write(registry, tok, "DELETE", url, None, as_json, done, ignore_not_found=ignore_not_found)


def _split(text: str, sep: str) -> list[str]:
    return [p.strip() for p in text.split(sep) if p.strip()]


# ---------------------------------------------------------------------------- settings


@setting_app.command("set")
def setting_set(
    name: Annotated[str, typer.Argument(help="Setting name.")],
    value: Annotated[str, typer.Argument(help="Value.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a setting."""
    body = {"value": value}
    write(
        registry,
        read_token(token, token_file),
        "PUT",
        path("settings", name),
        body,
        as_json,
        f"{name} set",
    )


@setting_app.command("rm")
def setting_rm(
    name: Annotated[str, typer.Argument(help="Setting name.")],
    ignore_not_found: IgnoreNotFoundOpt = False,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a setting."""
    url = path("settings", name)
    tok = read_token(token, token_file)
    done = f"{name} removed"
    write(registry, tok, "DELETE", url, None, as_json, done, ignore_not_found=ignore_not_found)
