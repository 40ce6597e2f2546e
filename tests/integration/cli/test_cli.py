"""The registry CLI as a subprocess against an admin API served by uvicorn, and QueryF over
a real TarsServer (for ``resolve``)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tarscascade.admin import create_registry_app
from tarscascade.catalog.queryf import handle_query
from tarscascade.registry.core import RegistryCore
from tarscascade.testing import eventually
from tarscascade.transport import Current, TarsServer
from tarscascade.wire.idl.queryf import QUERY_SERVANT
from tests.integration.admin.harness import TOKEN, admin_of, running_core

OBJ = "Test.HelloServer.HelloObj"


class QueryServant:
    """The registry's QueryF answers, as the registry process hosts them."""

    name = QUERY_SERVANT

    def __init__(self, core: RegistryCore) -> None:
        self.core = core

    def dispatch(self, current: Current) -> tuple[int, bytes, str]:
        req = current.request
        return handle_query(self.core.answerer, req.sFuncName, req.sBuffer, current.host_name)


@dataclass
class Registry:
    core: RegistryCore
    url: str  # admin API
    via: str  # QueryObj HOST:PORT

    async def run(self, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
        """``tarscascade ARGS`` against this registry (URL and token from the environment)."""
        env = {"TARSCASCADE_REGISTRY": self.url}
        if token is not None:
            env["TARSCASCADE_TOKEN"] = token
        return await run_cli(*args, env=env)


async def run_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # The subprocess runs in a thread so this event loop keeps serving its requests.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TARSCASCADE_")}
    clean.pop("COLUMNS", None)
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tarscascade.cli", *args],
        capture_output=True,
        text=True,
        env=clean | (env or {}),
        timeout=60,
        check=False,
    )


async def invoke_in_process(registry: Registry, *args: str, token: str | None = None) -> Any:
    """``tarscascade ARGS`` through typer's runner in a thread: the arguments never appear
    on a process's command line (``ps``), for the tests of ``--token`` itself."""
    from typer.testing import CliRunner

    from tarscascade.cli.app import app

    env = {"TARSCASCADE_REGISTRY": registry.url, "TARSCASCADE_TOKEN": token}
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


def ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p.stdout


def ok_json(p: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(p))


def failed(p: subprocess.CompletedProcess[str], code: int) -> str:
    """The one-line error of a command that exited with ``code``."""
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("tarscascade: ")
    return lines[0]


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    async with running_core(tmp_path) as core:
        app = create_registry_app(admin_of(core), token=TOKEN)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        await eventually(lambda: server.started or task.done(), what="uvicorn started")
        assert not task.done(), "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        tars = TarsServer([QueryServant(core)])
        await tars.start()
        try:
            yield Registry(core, f"http://127.0.0.1:{port}", f"127.0.0.1:{tars.port}")
        finally:
            await tars.aclose()
            server.should_exit = True
            await task


# ---------------------------------------------------------------------------- endpoints


async def test_endpoint_add_state_update_rm_and_reads(registry: Registry) -> None:
    out = ok(await registry.run("endpoint", "add", OBJ, "tcp -h 10.0.0.1 -p 10000 -t 60000"))
    assert f'added "tcp -h 10.0.0.1 -p 10000 -t 60000" to {OBJ} (revision 1)' in out
    ok(await registry.run("endpoint", "add", OBJ, "tcp -h 10.0.0.2 -p 10000", "--node", "n-2"))

    table = ok(await registry.run("objects"))
    assert OBJ in table
    row = next(line for line in table.splitlines() if OBJ in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [OBJ, "2", "2", "0"]
    listed = ok_json(await registry.run("objects", "--json"))
    assert listed["objects"] == [{"object_id": OBJ, "endpoints": 2, "active": 2, "inactive": 0}]

    out = ok(await registry.run("endpoint", "state", OBJ, "tcp -h 10.0.0.1 -p 10000", "inactive"))
    assert "is inactive (revision 3)" in out
    table = ok(await registry.run("object", OBJ))
    line = next(x for x in table.splitlines() if "10.0.0.1" in x)
    assert "tcp -h 10.0.0.1 -p 10000 -t 60000" in line
    assert "inactive" in line
    assert line.rstrip(" │").endswith("no")
    eps = ok_json(await registry.run("object", OBJ, "--json"))["endpoints"]
    by_host = {e["host"]: e for e in eps}
    assert by_host["10.0.0.1"]["active"] is False
    assert by_host["10.0.0.2"]["node_name"] == "n-2"
    # the adapter keepAlive names: the TARS default, or the one given with --adapter
    assert (by_host["10.0.0.1"]["adapter_name"], by_host["10.0.0.1"]["adapter"]) == (
        "",
        OBJ + "Adapter",
    )
    upd = await registry.run(
        "endpoint", "update", OBJ, "tcp -h 10.0.0.1 -p 10000", "--adapter", "HelloAdapter"
    )
    ok(upd)
    eps = ok_json(await registry.run("object", OBJ, "--json"))["endpoints"]
    assert {e["host"]: e["adapter"] for e in eps}["10.0.0.1"] == "HelloAdapter"
    ok(await registry.run("endpoint", "update", OBJ, "tcp -h 10.0.0.1 -p 10000", "--adapter", ""))

    upd = await registry.run(
        "endpoint", "update", OBJ, "tcp -h 10.0.0.2 -p 10000", "--weight", "50", "--json"
    )
    assert ok_json(upd)["endpoint"]["weight"] == 50

    status = ok_json(await registry.run("status", "--json"))
    assert status["revision"] == 6
    assert status["counts"]["endpoints"] == 2
    table = ok(await registry.run("status"))
    assert "revision 6" in table
    assert "(endpoints: 2)" in table

    ok(await registry.run("endpoint", "rm", OBJ, "tcp -h 10.0.0.1 -p 10000"))
    ok(await registry.run("endpoint", "rm", OBJ, "tcp -h 10.0.0.2 -p 10000 -t 5"))
    line = failed(await registry.run("object", OBJ), 5)  # 5: not found
    assert line == f"tarscascade: not found: object {OBJ} (HTTP 404)"


async def test_endpoint_batch_from_a_file_all_or_nothing(
    registry: Registry, tmp_path: Path
) -> None:
    ops = [
        {"op": "add", "object_id": OBJ, "endpoint": "tcp -h 10.0.0.1 -p 1"},
        {"op": "add", "object_id": OBJ, "endpoint": "tcp -h 10.0.0.2 -p 1", "node": "n-2"},
        {"op": "state", "object_id": OBJ, "host": "10.0.0.1", "port": 1, "state": "inactive"},
    ]
    good = tmp_path / "deploy.json"
    good.write_text(json.dumps({"ops": ops}))
    out = ok(await registry.run("endpoint", "batch", str(good)))
    assert "applied 3 ops in one transaction (revision 3)" in out
    eps = {e["host"]: e for e in ok_json(await registry.run("object", OBJ, "--json"))["endpoints"]}
    assert (eps["10.0.0.1"]["setting_state"], eps["10.0.0.2"]["node_name"]) == ("inactive", "n-2")

    before = registry.core.revision
    bad = tmp_path / "bad.json"  # the list itself; its second op names a missing endpoint
    new = ops[0] | {"endpoint": "tcp -h 10.0.0.3 -p 1"}
    bad.write_text(json.dumps([new, ops[2] | {"port": 9}]))
    line = failed(await registry.run("endpoint", "batch", str(bad)), 5)
    assert 'ops[1] endpoint "tcp -h 10.0.0.1 -p 9"' in line
    (tmp_path / "junk.json").write_text("{not json")
    failed(await registry.run("endpoint", "batch", str(tmp_path / "junk.json")), 2)
    failed(await registry.run("endpoint", "batch", str(tmp_path / "absent.json")), 2)
    assert registry.core.revision == before


async def test_bad_input_is_one_line_and_changes_nothing(registry: Registry) -> None:
    before = registry.core.revision
    line = failed(await registry.run("endpoint", "add", OBJ, "tcp -h 10.0.0.1"), 2)
    assert "missing -p" in line
    line = failed(await registry.run("endpoint", "add", OBJ, "tcp -h 10.0.0.1 -p 99999"), 2)
    assert "-p" in line
    line = failed(await registry.run("endpoint", "add", "NoObject", "tcp -h h -p 1"), 2)
    assert "bad object id 'NoObject'" in line  # checked here, before anything is sent
    line = failed(await registry.run("endpoint", "add", OBJ, "tcp -h h -p 1", "--set", "a.b"), 1)
    assert "set id" in line
    line = failed(await registry.run("endpoint", "update", OBJ, "tcp -h h -p 1"), 2)
    assert "nothing to update" in line
    line = failed(
        await registry.run("endpoint", "add", OBJ, "tcp -h h -p 1", "--adapter", "AdminAdapter"), 1
    )
    assert "AdminAdapter" in line
    line = failed(
        await registry.run("endpoint", "add", OBJ, "tcp -h h -p 1", "--adapter", "a b"), 1
    )
    assert "adapter name" in line
    line = failed(await registry.run("endpoint", "rm", OBJ, "tcp -h h -p 1"), 5)
    assert line == f'tarscascade: not found: endpoint "tcp -h h -p 1" of {OBJ} (HTTP 404)'
    assert "|" not in line  # never the store's internal key
    bad_state = await registry.run("endpoint", "state", OBJ, "tcp -h h -p 1", "up")
    assert bad_state.returncode == 2
    ok(await registry.run("endpoint", "add", OBJ, "tcp -h 10.0.0.1 -p 1"))
    line = failed(await registry.run("endpoint", "add", OBJ, "tcp -h 10.0.0.1 -p 1"), 1)
    assert "HTTP 409" in line
    assert registry.core.revision == before + 1


async def test_writes_need_the_token(registry: Registry) -> None:
    line = failed(await registry.run("endpoint", "add", OBJ, "tcp -h h -p 1", token=None), 1)
    assert "HTTP 401" in line
    assert "token" in line
    line = failed(await registry.run("setting", "set", "a", "b", token="wrong"), 1)
    assert "HTTP 403" in line
    assert registry.core.revision == 0
    ok(await registry.run("objects", token=None))  # reads are open
    # --token beats the environment (in process: no test puts a secret on a command line)
    res = await invoke_in_process(
        registry, "setting", "set", "a", "b", "--token", TOKEN, token="wrong"
    )
    assert res.exit_code == 0, res.output
    assert registry.core.catalog.get_setting("a") == "b"


async def test_cannot_connect_is_exit_3() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = failed(await run_cli("objects", "--registry", f"http://127.0.0.1:{port}"), 3)
    assert f"cannot connect to the registry at http://127.0.0.1:{port}" in line
    line = failed(await run_cli("resolve", OBJ, "--via", f"127.0.0.1:{port}"), 3)
    assert "cannot connect" in line
    line = failed(await run_cli("resolve", OBJ, "--via", "nowhere"), 2)
    assert "HOST:PORT" in line


# ---------------------------------------------------------------------------- other categories


async def test_nodes_groups_settings(registry: Registry) -> None:
    ok(await registry.run("node", "add", "node-1", "--host", "10.0.0.1", "--port", "19386"))
    table = ok(await registry.run("nodes"))
    assert "node-1" in table
    assert "10.0.0.1:19386" in table
    assert [n["name"] for n in ok_json(await registry.run("nodes", "--json"))["nodes"]] == [
        "node-1"
    ]
    ok(await registry.run("node", "rm", "node-1"))
    assert ok_json(await registry.run("nodes", "--json"))["nodes"] == []

    ok(await registry.run("group", "rule", "add", "1", "idc-a", "--allow", "10.0.1.*|10.0.2.3"))
    assert "10.0.1.*|10.0.2.3" in ok(await registry.run("group", "rules"))
    rules = ok_json(await registry.run("group", "rules", "--json"))["rules"]
    assert rules[0]["allow_ip_rule"] == ["10.0.1.*", "10.0.2.3"]
    line = failed(await registry.run("group", "rule", "add", "2", "b", "--allow", "10.0.300.1"), 1)
    assert "HTTP 400" in line

    ok(
        await registry.run(
            "group", "priority", "add", "5", "--groups", "1,2", "--order", "1", "--station", "sz"
        )
    )
    table = ok(await registry.run("group", "priorities"))
    assert "1,2" in table
    assert "sz" in table
    prios = ok_json(await registry.run("group", "priorities", "--json"))["priorities"]
    assert prios == [{"id": 5, "name": "", "group_list": [1, 2], "list_order": 1, "station": "sz"}]
    line = failed(await registry.run("group", "priority", "add", "6", "--groups", "1,x"), 2)
    assert "--groups" in line
    ok(await registry.run("group", "priority", "rm", "5"))
    ok(await registry.run("group", "rule", "rm", "1"))
    assert ok_json(await registry.run("group", "rules", "--json"))["rules"] == []

    ok(await registry.run("setting", "set", "refresh.interval", "3000"))
    assert "refresh.interval" in ok(await registry.run("settings"))
    settings = ok_json(await registry.run("settings", "--json"))["settings"]
    assert settings == [{"name": "refresh.interval", "value": "3000"}]
    ok(await registry.run("setting", "rm", "refresh.interval"))
    line = failed(await registry.run("setting", "rm", "refresh.interval"), 5)
    assert line == "tarscascade: not found: setting refresh.interval (HTTP 404)"


# ---------------------------------------------------------------------------- resolve


async def _resolve_json(registry: Registry, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = ok_json(
        await registry.run("resolve", OBJ, "--via", registry.via, "--json", *args)
    )
    return data


def _ports(eps: list[dict[str, Any]]) -> list[int]:
    return sorted(e["port"] for e in eps)


async def _add_three(registry: Registry) -> None:
    """Two set endpoints in IDC groups 1 and 2 and an inactive one outside any set."""
    ok(await registry.run("group", "rule", "add", "1", "idc-a", "--allow", "10.0.1.*"))
    ok(await registry.run("group", "rule", "add", "2", "idc-b", "--allow", "10.0.2.*"))
    ok(await registry.run("group", "priority", "add", "1", "--groups", "1", "--station", "sz"))
    for args in (
        ("tcp -h 10.0.1.5 -p 8001 -w 10", "--set", "app.sz.1", "--enable-group", "--node", "n1"),
        ("tcp -h 10.0.2.5 -p 8002", "--set", "app.sh.1", "--enable-group"),
        ("tcp -h 10.0.3.5 -p 8003", "--inactive"),
    ):
        ok(await registry.run("endpoint", "add", OBJ, *args))


async def test_resolve_prints_active_and_inactive(registry: Registry) -> None:
    await _add_three(registry)
    out = ok(await registry.run("resolve", OBJ, "--via", registry.via))
    active, _, inactive = out.partition("inactive (")
    assert "active (2)" in active
    assert "tcp -h 10.0.1.5 -p 8001 -t 3000 -w 10" in active
    assert "n1" in active
    assert "tcp -h 10.0.2.5 -p 8002" in active
    assert "tcp -h 10.0.3.5 -p 8003" in inactive
    assert "1)" in inactive

    data = await _resolve_json(registry)
    assert data["function"] == "findObjectById4Any"
    assert data["ret"] == 0
    assert _ports(data["active"]) == [8001, 8002]
    assert _ports(data["inactive"]) == [8003]
    by_id = await _resolve_json(registry, "--method", "id")
    assert by_id["function"] == "findObjectById"
    assert (_ports(by_id["active"]), by_id["inactive"]) == ([8001, 8002], [])
    unknown = ok_json(await registry.run("resolve", "Test.No.Obj", "--via", registry.via, "--json"))
    assert (unknown["ret"], unknown["active"], unknown["inactive"]) == (0, [], [])


async def test_resolve_by_set_station_and_caller_group(registry: Registry) -> None:
    await _add_three(registry)
    by_set = await _resolve_json(registry, "--method", "set", "--set", "app.sz.1")
    assert by_set["function"] == "findObjectByIdInSameSet"
    assert (_ports(by_set["active"]), by_set["inactive"]) == ([8001], [])
    assert _ports((await _resolve_json(registry, "--set", "app.sh.1"))["active"]) == [8002]

    by_station = await _resolve_json(registry, "--method", "station", "--station", "sz")
    assert by_station["function"] == "findObjectByIdInSameStation"
    assert _ports(by_station["active"]) == [8001]
    line = failed(await registry.run("resolve", OBJ, "--via", registry.via, "--station", "x"), 1)
    assert "ret=-1" in line
    line = failed(await registry.run("resolve", OBJ, "--via", registry.via, "--method", "set"), 2)
    assert "--set" in line

    # the caller's identity picks its IDC group: a caller in 10.0.2.* gets group 2
    group = await _resolve_json(registry, "--method", "group", "--node-name", "10.0.2.77")
    assert group["function"] == "findObjectByIdInSameGroup"
    assert _ports(group["active"]) == [8002]
    group = await _resolve_json(registry, "--method", "group", "--node-name", "10.0.1.77")
    assert _ports(group["active"]) == [8001]


# ---------------------------------------------------------------------------- conventions


async def test_token_file_beats_the_environment_and_conflicts_with_token(
    registry: Registry, tmp_path: Path
) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    ok(await registry.run("setting", "set", "a", "1", "--token-file", str(secret), token="wrong"))
    assert registry.core.catalog.get_setting("a") == "1"
    res = await invoke_in_process(
        registry, "setting", "set", "a", "2", "--token", TOKEN, "--token-file", str(secret)
    )
    assert res.exit_code == 2, res.output
    assert "--token or --token-file, not both" in res.output
    line = failed(await registry.run("setting", "set", "a", "2", "--token-file", "/no/such"), 2)
    assert "cannot read --token-file" in line
    (tmp_path / "empty").write_text("\n")
    line = failed(
        await registry.run("setting", "set", "a", "2", "--token-file", str(tmp_path / "empty")), 2
    )
    assert "is empty" in line
    assert registry.core.catalog.get_setting("a") == "1"


async def test_removals_with_ignore_not_found(registry: Registry) -> None:
    before = registry.core.revision
    for args in (
        ("endpoint", "rm", OBJ, "tcp -h 10.0.0.9 -p 9"),
        ("node", "rm", "ghost"),
        ("setting", "rm", "ghost"),
        ("group", "rule", "rm", "77"),
        ("group", "priority", "rm", "77"),
    ):
        failed(await registry.run(*args), 5)
        out = ok(await registry.run(*args, "--ignore-not-found"))
        assert "nothing to remove" in out, out
    assert registry.core.revision == before
    # a wrong URL is a 404 too, but for a route: never taken for an absent record
    env = {"TARSCASCADE_REGISTRY": registry.url + "/nope", "TARSCASCADE_TOKEN": TOKEN}
    p = await run_cli("setting", "rm", "ghost", "--ignore-not-found", env=env)
    line = failed(p, 1)
    assert "no such route" in line


async def test_endpoint_add_without_node_warns_that_keepalive_will_not_govern_it(
    registry: Registry,
) -> None:
    p = await registry.run("endpoint", "add", OBJ, "tcp -h 10.0.0.1 -p 1")
    ok(p)
    assert "keepAlive will not govern it" in p.stderr
    assert '"tcp -h 10.0.0.1 -p 1"' in p.stderr
    p = await registry.run("endpoint", "add", OBJ, "tcp -h 10.0.0.1 -p 2", "--node", "n1")
    ok(p)
    assert p.stderr == ""


async def test_object_ids_are_checked_before_anything_is_sent(registry: Registry) -> None:
    for args in (
        ("object", "bad id"),
        ("endpoint", "rm", "A.B", "tcp -h h -p 1"),
        ("endpoint", "state", "A..C", "tcp -h h -p 1", "inactive"),
        ("resolve", "x", "--via", registry.via),
    ):
        line = failed(await registry.run(*args), 2)
        assert "bad object id" in line, args


async def test_objects_pages_through_the_listing(registry: Registry) -> None:
    for i in range(5):
        ok(await registry.run("endpoint", "add", f"App.S{i}.Obj", "tcp -h h -p 1", "--node", "n"))
    listed = ok_json(await registry.run("objects", "--json"))["objects"]
    assert [o["object_id"] for o in listed] == [f"App.S{i}.Obj" for i in range(5)]
    two = ok_json(await registry.run("objects", "--json", "--limit", "2"))["objects"]
    assert [o["object_id"] for o in two] == ["App.S0.Obj", "App.S1.Obj"]
    pre = ok_json(await registry.run("objects", "--json", "--prefix", "App.S3"))["objects"]
    assert [o["object_id"] for o in pre] == ["App.S3.Obj"]


async def test_node_show_and_ls(registry: Registry) -> None:
    ok(await registry.run("node", "add", "node-1", "--host", "10.0.0.1", "--port", "19386"))
    shown = ok_json(await registry.run("node", "show", "node-1", "--json"))
    assert (shown["name"], shown["host"], shown["registered"]) == ("node-1", "10.0.0.1", True)
    assert "10.0.0.1:19386" in ok(await registry.run("node", "ls"))
    failed(await registry.run("node", "show", "ghost"), 5)
