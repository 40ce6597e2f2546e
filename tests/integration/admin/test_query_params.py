"""Query parameters a route does not declare are refused (400, nothing changes), on every
admin app: a misspelled precondition must not turn a conditional write unconditional."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tarscascade.admin import create_registry_app
from tarscascade.cli.runtime import RegistryProcess
from tarscascade.node.app import NodeAgent
from tarscascade.registry.core import RegistryCore
from tests.integration.admin.harness import AUTH, TOKEN, admin_of
from tests.integration.admin.node_harness import OBJ, admin, asgi_client, converged

EP = f"/v1/objects/{OBJ}/endpoints"
ONE = f"{EP}/10.0.0.1/1"


@pytest.fixture
async def client(core: RegistryCore) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_registry_app(admin_of(core), token=TOKEN)) as c:
        c.headers.update(AUTH)
        yield c


async def _populate(c: httpx.AsyncClient) -> int:
    """An endpoint, a setting and a node to write to; the revision after them."""
    r = await c.post(EP, json={"endpoint": "tcp -h 10.0.0.1 -p 1 -w 10"})
    assert r.status_code == 201, r.text
    assert (await c.put("/v1/settings/s1", json={"value": "a"})).status_code == 200
    assert (await c.put("/v1/nodes/n1", json={})).status_code == 200
    revision: int = (await c.get("/v1/status")).json()["revision"]
    return revision


async def _snapshot(c: httpx.AsyncClient) -> dict[str, Any]:
    """What a refused request must leave as it was: versions, digests, counts, records."""
    return {
        "status": (await c.get("/v1/status")).json(),
        "endpoint": (await c.get(ONE)).json(),
        "setting": (await c.get("/v1/settings/s1")).json(),
        "node": (await c.get("/v1/nodes/n1")).json()["setting_state"],
    }


def _refused(r: httpx.Response, *names: str) -> str:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["reason"] == "bad_request"
    message: str = body["error"]
    for name in names:
        assert name in message, message
    return message


PRECONDITION = "(this route takes: if_revision)"
BATCH = {"ops": [{"op": "remove", "object_id": OBJ, "host": "10.0.0.1", "port": 1}]}
#: method, path, body, and what the refusal says the route takes
WRITES = [
    ("PATCH", ONE, {"weight": 5}, PRECONDITION),
    ("PUT", f"{ONE}/state", {"state": "inactive"}, PRECONDITION),
    ("DELETE", ONE, None, PRECONDITION),
    ("POST", EP, {"endpoint": "tcp -h 10.0.0.2 -p 2"}, PRECONDITION),
    ("POST", f"{ONE}/drain", {"timeout": 0}, "(this route takes none)"),
    ("POST", "/v1/batch", BATCH, "(this route takes none)"),
    ("PUT", "/v1/settings/s1", {"value": "b"}, PRECONDITION),
    ("DELETE", "/v1/settings/s1", None, PRECONDITION),
    ("PUT", "/v1/nodes/n1", {"state": "inactive"}, PRECONDITION),
    ("DELETE", "/v1/nodes/n1", None, PRECONDITION),
    ("PUT", "/v1/groups/rules/1", {"group_name": "g", "allow_ip_rule": ["10.0.0.*"]}, PRECONDITION),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "takes"), WRITES, ids=[f"{w[0]} {w[1]}" for w in WRITES]
)
async def test_a_misspelled_precondition_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, method: str, path: str, body: Any, takes: str
) -> None:
    revision = await _populate(client)
    await client.patch(ONE, json={"weight": 11})  # a change after `revision`
    before = await _snapshot(client)
    r = await client.request(method, path, json=body, params={"if_revison": revision})
    _refused(r, "'if_revison'", takes)
    assert await _snapshot(client) == before


async def test_an_empty_parameter_name_is_refused(client: httpx.AsyncClient) -> None:
    """schemathesis's find: ``DELETE /v1/nodes/0?=false`` was accepted, and deleted."""
    assert (await client.put("/v1/nodes/0", json={})).status_code == 200
    revision = (await client.get("/v1/status")).json()["revision"]
    message = _refused(await client.delete("/v1/nodes/0?=false"), "''", "if_revision")
    assert message == "unknown query parameter '' (this route takes: if_revision)"
    assert (await client.get("/v1/nodes/0")).json()["registered"] is True
    assert (await client.get("/v1/status")).json()["revision"] == revision


async def test_a_repeated_precondition_is_refused(client: httpx.AsyncClient) -> None:
    """FastAPI keeps the last of ``?if_revision=1&if_revision=2``: the stale first one
    would have been dropped without a word."""
    stale = await _populate(client)
    await client.patch(ONE, json={"weight": 11})
    fresh = (await client.get("/v1/status")).json()["revision"]
    before = await _snapshot(client)
    r = await client.patch(
        ONE, json={"weight": 5}, params=[("if_revision", stale), ("if_revision", fresh)]
    )
    _refused(r, "'if_revision'", "more than once")
    assert await _snapshot(client) == before


async def test_declared_parameters_work_as_before_and_an_extra_one_is_refused(
    client: httpx.AsyncClient,
) -> None:
    stale = await _populate(client)
    await client.patch(ONE, json={"weight": 11})
    r = await client.patch(ONE, json={"weight": 5}, params={"if_revision": stale})
    assert r.status_code == 409, r.text
    fresh = (await client.get("/v1/status")).json()["revision"]
    before = await _snapshot(client)
    r = await client.patch(ONE, json={"weight": 5}, params={"if_revision": fresh, "dry_run": 1})
    _refused(r, "'dry_run'", "if_revision")
    assert await _snapshot(client) == before
    r = await client.patch(ONE, json={"weight": 5}, params={"if_revision": fresh})
    assert r.status_code == 200, r.text
    assert r.json()["endpoint"]["weight"] == 5
    page = await client.get("/v1/objects", params={"limit": 1, "prefix": "Test."})
    assert page.status_code == 200, page.text
    assert [o["object_id"] for o in page.json()["objects"]] == [OBJ]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/status?verbose=1", "verbose"),
        ("/v1/objects?lmit=1", "lmit"),
        (f"/v1/objects/{OBJ}?x", "x"),
        (f"{ONE}?if_revision=1", "if_revision"),  # reads take no precondition
        ("/v1/nodes?all=true", "all"),
        ("/healthz?deep=1", "deep"),
        ("/metrics?name=x", "name"),
        ("/ui/tree?qq=n", "qq"),
    ],
)
async def test_a_read_with_an_unknown_parameter_is_refused(
    client: httpx.AsyncClient, path: str, name: str
) -> None:
    await _populate(client)
    _refused(await client.get(path), f"'{name}'")


async def test_the_node_agent_refuses_unknown_parameters_too(
    node_app: tuple[RegistryProcess, NodeAgent, httpx.AsyncClient],
) -> None:
    """``?indx=N`` must not quietly turn a blocking query into an immediate one."""
    rp, agent, c = node_app
    a = admin(rp)
    res = await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.1 -p 1"))
    await converged(rp, [agent])
    url = f"/v1/objects/{OBJ}"
    message = _refused(await c.get(url, params={"indx": res.revision + 1}), "'indx'")
    assert "takes: caller, index, wait" in message
    _refused(await c.get(url, params=[("index", res.revision), ("index", 0)]), "more than once")
    for path in ("/status?v=1", "/healthz?x=1", "/metrics?x=1", "/?x=1"):
        _refused(await c.get(path))
    r = await c.get(url, params={"index": 0, "wait": "0s", "caller": "10.0.0.9"})
    assert r.status_code == 200, r.text
    assert r.json()["caller"] == "10.0.0.9"
