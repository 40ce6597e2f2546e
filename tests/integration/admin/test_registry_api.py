"""The registry admin API against a real RegistryCore over a temporary SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tarscascade.admin import (
    RegistryMetrics,
    UnsafeListenError,
    check_listen_safety,
    create_registry_app,
)
from tarscascade.registry.core import RegistryCore
from tests.integration.admin.harness import AUTH, TOKEN, admin_of

OBJ = "Test.HelloServer.HelloObj"
EP = f"/v1/objects/{OBJ}/endpoints"


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def client(core: RegistryCore) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that has an admin token; writes send it."""
    app = create_registry_app(admin_of(core), token=TOKEN)
    async with _client(app) as c:
        c.headers.update(AUTH)
        yield c


async def add(c: httpx.AsyncClient, endpoint: str, **extra: Any) -> dict[str, Any]:
    r = await c.post(EP, json={"endpoint": endpoint, **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def state_of(c: httpx.AsyncClient) -> dict[str, Any]:
    """Everything a refused request must leave unchanged: revision, digests, counts."""
    status = (await c.get("/v1/status")).json()
    objects = (await c.get("/v1/objects")).json()
    return {
        "revision": status["revision"],
        "categories": status["categories"],
        "counts": status["counts"],
        "objects": objects,
    }


# ---------------------------------------------------------------------------- objects


async def test_endpoint_lifecycle(client: httpx.AsyncClient) -> None:
    rev0 = (await client.get("/v1/status")).json()["revision"]
    added = await add(client, "tcp -h 10.0.0.1 -p 10000 -t 60000 -w 10", node="node-1")
    assert added["revision"] == rev0 + 1
    ep = added["endpoint"]
    assert ep["host"] == "10.0.0.1"
    assert ep["port"] == 10000
    assert ep["timeout"] == 60000
    assert ep["weight"] == 10
    assert ep["node_name"] == "node-1"
    assert ep["active"] is True
    assert ep["endpoint"] == "tcp -h 10.0.0.1 -p 10000 -t 60000 -w 10"
    status = (await client.get("/v1/status")).json()
    assert status["revision"] == added["revision"]
    assert status["counts"]["endpoints"] == 1

    objects = (await client.get("/v1/objects")).json()["objects"]
    assert objects == [{"object_id": OBJ, "endpoints": 1, "active": 1, "inactive": 0}]
    one = (await client.get(f"/v1/objects/{OBJ}")).json()
    assert [e["port"] for e in one["endpoints"]] == [10000]
    got = (await client.get(f"{EP}/10.0.0.1/10000")).json()
    assert got["weight"] == 10

    r = await client.patch(f"{EP}/10.0.0.1/10000", json={"weight": 50, "qos": 3})
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == added["revision"] + 1
    assert r.json()["endpoint"]["weight"] == 50
    assert r.json()["endpoint"]["qos"] == 3

    r = await client.put(f"{EP}/10.0.0.1/10000/state", json={"state": "inactive"})
    assert r.status_code == 200, r.text
    assert r.json()["endpoint"]["setting_state"] == "inactive"
    assert r.json()["endpoint"]["active"] is False
    objects = (await client.get("/v1/objects")).json()["objects"]
    assert objects[0]["inactive"] == 1

    r = await client.delete(f"{EP}/10.0.0.1/10000")
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == (await client.get("/v1/status")).json()["revision"]
    r = await client.get(f"/v1/objects/{OBJ}")
    assert r.status_code == 404
    assert "not found" in r.json()["error"]


async def test_add_endpoint_options(client: httpx.AsyncClient) -> None:
    ep = (
        await add(
            client,
            "tcp -h 10.0.0.2 -p 10001",
            set_id="app.sz.1",
            enable_group=True,
            ip_group_name="idc-a",
            bak_flag=1,
            state="inactive",
        )
    )["endpoint"]
    assert (ep["set_id"], ep["enable_group"], ep["ip_group_name"]) == ("app.sz.1", True, "idc-a")
    assert (ep["bak_flag"], ep["setting_state"], ep["active"]) == (1, "inactive", False)
    # without set_id the endpoint string's -s is the set
    ep = (await add(client, "udp -h 10.0.0.3 -p 10002 -s app.sh.2"))["endpoint"]
    assert (ep["set_id"], ep["istcp"]) == ("app.sh.2", 0)
    # replace overwrites instead of 409
    ep = (await add(client, "tcp -h 10.0.0.3 -p 10002 -w 7", replace=True))["endpoint"]
    assert (ep["set_id"], ep["istcp"], ep["weight"]) == ("", 1, 7)


async def test_ipv6_host_in_path(client: httpx.AsyncClient) -> None:
    await add(client, "tcp -h ::1 -p 10003")
    r = await client.get(f"{EP}/%3A%3A1/10003")
    assert r.status_code == 200, r.text
    assert r.json()["host"] == "::1"
    r = await client.delete(f"{EP}/%3A%3A1/10003")
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------- bad input

BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    # (method, path, json body (None: no body), status, message fragment)
    ("POST", "/v1/objects/NotAnObject/endpoints", {"endpoint": "tcp -h h -p 1"}, 400, "object id"),
    ("GET", "/v1/objects/bad..id", None, 400, "object id"),
    ("POST", EP, {"endpoint": "tcp -h 10.0.0.1"}, 400, "missing -p"),
    ("POST", EP, {"endpoint": "http -h 10.0.0.1 -p 1"}, 400, "unknown transport"),
    ("POST", EP, {"endpoint": "tcp -h 10.0.0.1 -p 70000"}, 400, "-p"),
    ("POST", EP, {"endpoint": "tcp -h 10.0.0.1 -p 0"}, 400, "port"),
    ("POST", EP, {"endpoint": ""}, 400, "body.endpoint"),
    ("POST", EP, {"endpoint": "tcp -h h -p 1", "set_id": "a.b"}, 400, "set id"),
    ("POST", EP, {"endpoint": "tcp -h h -p 1", "set_id": "*.b.c"}, 400, "set"),
    ("POST", EP, {"endpoint": "tcp -h h -p 1", "node": "bad node"}, 400, "node name"),
    ("POST", EP, {"endpoint": "tcp -h h -p 1", "colour": "red"}, 400, "body.colour"),
    ("POST", EP, {"endpoint": "tcp -h h -p 1", "bak_flag": "1"}, 400, "body.bak_flag"),
    ("POST", EP, {"endpoint": "tcp -h h -p 1", "bak_flag": 2}, 400, "body.bak_flag"),
    ("POST", EP, {"endpoint": "tcp -h h -p 1", "enable_group": 1}, 400, "body.enable_group"),
    ("POST", EP, {"endpoint": "tcp -h h -p 1", "state": "up"}, 400, "body.state"),
    ("POST", EP, {"endpoint": 5}, 400, "body.endpoint"),
    ("POST", EP, ["tcp -h h -p 1"], 400, "body"),
    ("POST", EP, None, 400, "JSON request body is required"),
    ("POST", EP, {"endpoint": "tcp -h 10.0.0.9 -p 9000"}, 409, "exists"),
    ("PATCH", f"{EP}/10.0.0.9/9000", {}, 400, "nothing to change"),
    ("PATCH", f"{EP}/10.0.0.9/9000", {"weight": None}, 400, "null"),
    ("PATCH", f"{EP}/10.0.0.9/9000", {"host": "10.0.0.8"}, 400, "body.host"),
    ("PATCH", f"{EP}/10.0.0.9/9000", {"weight": -2}, 400, "body.weight"),
    ("PATCH", f"{EP}/10.0.0.9/9000", {"weight": 1.5}, 400, "body.weight"),
    ("PATCH", f"{EP}/10.0.0.9/9000", {"weight_type": 1, "weight": 500}, 400, "0..100"),
    ("PATCH", f"{EP}/10.0.0.9/9000", {"istcp": 3}, 400, "body.istcp"),
    ("PATCH", f"{EP}/10.0.0.9/9000", {"set_id": "nope"}, 400, "set id"),
    ("PATCH", f"{EP}/10.0.0.9/9000", {"setting_state": "gone"}, 400, "body.setting_state"),
    ("PATCH", f"{EP}/10.0.0.9/9000", None, 400, "JSON request body is required"),
    ("PATCH", f"{EP}/10.0.0.9/abc", {"weight": 1}, 400, "path.port"),
    ("PATCH", f"{EP}/10.0.0.9/0", {"weight": 1}, 400, "path.port"),
    ("PATCH", f"{EP}/10.0.0.9/65536", {"weight": 1}, 400, "path.port"),
    ("PATCH", f"{EP}/10.0.0.9/9001", {"weight": 1}, 404, "not found"),
    ("PUT", f"{EP}/10.0.0.9/9000/state", {"state": "up"}, 400, "body.state"),
    ("PUT", f"{EP}/10.0.0.9/9000/state", {"state": "active", "x": 1}, 400, "body.x"),
    ("PUT", f"{EP}/10.0.0.9/9000/state", None, 400, "JSON request body is required"),
    ("PUT", f"{EP}/10.0.0.8/9000/state", {"state": "active"}, 404, "not found"),
    ("GET", f"{EP}/10.0.0.8/9000", None, 404, "not found"),
    ("DELETE", f"{EP}/10.0.0.8/9000", None, 404, "not found"),
    ("GET", "/v1/objects/Test.Missing.Obj", None, 404, "not found"),
    ("PUT", "/v1/nodes/bad%20node", {}, 400, "node name"),
    ("PUT", "/v1/nodes/n1", {"port": 70000}, 400, "body.port"),
    ("PUT", "/v1/nodes/n1", {"present_state": "active"}, 400, "body.present_state"),
    ("GET", "/v1/nodes/missing", None, 404, "not found"),
    ("DELETE", "/v1/nodes/missing", None, 404, "not found"),
    ("PUT", "/v1/groups/rules/1", {"group_name": "g", "allow_ip_rule": ["10.0.1.300"]}, 400, "IP"),
    ("PUT", "/v1/groups/rules/1", {"group_name": "g", "allow_ip_rule": ["10.*.*.*"]}, 400, "IP"),
    ("PUT", "/v1/groups/rules/1", {"allow_ip_rule": []}, 400, "body.group_name"),
    ("PUT", "/v1/groups/rules/-1", {"group_name": "g", "allow_ip_rule": []}, 400, "path.group_id"),
    (
        "PUT",
        "/v1/groups/rules/1",
        {"group_name": "g", "allow_ip_rule": [], "ip_order": "x"},
        400,
        "body.ip_order",
    ),
    ("DELETE", "/v1/groups/rules/42", None, 404, "not found"),
    ("PUT", "/v1/groups/priorities/1", {"group_list": []}, 400, "body.group_list"),
    ("PUT", "/v1/groups/priorities/1", {"group_list": ["1"]}, 400, "body.group_list"),
    ("PUT", "/v1/groups/priorities/1", {"group_list": [1], "station": "a b"}, 400, "station"),
    ("DELETE", "/v1/groups/priorities/42", None, 404, "not found"),
    ("PUT", "/v1/settings/x", {"value": "v" * 5000}, 400, "body.value"),
    ("PUT", "/v1/settings/x", {"value": 1}, 400, "body.value"),
    ("PUT", "/v1/settings/bad%20name", {"value": "v"}, 400, "setting name"),
    ("GET", "/v1/settings/missing", None, 404, "not found"),
    ("DELETE", "/v1/settings/missing", None, 404, "not found"),
    ("GET", "/v1/nothing-here", None, 404, "no such route"),
    ("DELETE", "/v1/objects", None, 405, "not allowed"),
    ("POST", "/v1/status", {}, 405, "not allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    BAD_REQUESTS,
    ids=[f"{m} {p} {b!r}"[:90] for m, p, b, _, _ in BAD_REQUESTS],
)
async def test_bad_request_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, method: str, path: str, body: Any, status: int, fragment: str
) -> None:
    await add(client, "tcp -h 10.0.0.9 -p 9000")
    before = await state_of(client)
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    r = await client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    message = r.json()["error"]
    assert isinstance(message, str)
    assert fragment in message
    assert "\n" not in message
    assert await state_of(client) == before


async def test_invalid_json_and_wrong_content_type(client: httpx.AsyncClient) -> None:
    before = await state_of(client)
    r = await client.post(
        EP, content=b'{"endpoint": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]
    r = await client.post(EP, content=b"endpoint=x", headers={"content-type": "text/plain"})
    assert r.status_code == 400
    assert await state_of(client) == before


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    before = await state_of(client)
    big = b'{"endpoint": "' + b"x" * (1024 * 1024) + b'"}'
    r = await client.post(EP, content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "larger than" in r.json()["error"]

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted while read
        for _ in range(20):
            yield b" " * 65536

    r = await client.post(EP, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert await state_of(client) == before


# ---------------------------------------------------------------------------- other categories


async def test_nodes(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/nodes/node-1", json={"host": "10.0.0.1", "port": 19386})
    assert r.status_code == 200, r.text
    assert r.json()["node"]["host"] == "10.0.0.1"
    r = await client.put("/v1/nodes/node-2")  # no body: a node with defaults
    assert r.status_code == 200, r.text
    names = [n["name"] for n in (await client.get("/v1/nodes")).json()["nodes"]]
    assert names == ["node-1", "node-2"]
    # a later PUT changes only what it names
    r = await client.put("/v1/nodes/node-1", json={"state": "inactive"})
    node = r.json()["node"]
    assert (node["host"], node["port"], node["setting_state"]) == ("10.0.0.1", 19386, "inactive")
    assert (await client.get("/v1/nodes/node-1")).json()["setting_state"] == "inactive"
    # an endpoint on an inactive node is inactive
    ep = (await add(client, "tcp -h 10.0.0.1 -p 1", node="node-1"))["endpoint"]
    assert ep["active"] is False
    r = await client.delete("/v1/nodes/node-2")
    assert r.status_code == 200
    assert r.json()["revision"] == (await client.get("/v1/status")).json()["revision"]
    assert (await client.get("/v1/nodes/node-2")).status_code == 404


async def test_group_rules_and_priorities(client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/v1/groups/rules/1",
        json={"group_name": "idc-a", "allow_ip_rule": ["10.0.1.*", "10.0.2.3"]},
    )
    assert r.status_code == 200, r.text
    rules = (await client.get("/v1/groups/rules")).json()["rules"]
    assert rules == [
        {
            "group_id": 1,
            "group_name": "idc-a",
            "allow_ip_rule": ["10.0.1.*", "10.0.2.3"],
            "ip_order": "allow_denny",
            "denny_ip_rule": [],
        }
    ]
    r = await client.put(
        "/v1/groups/priorities/7",
        json={"name": "sz", "group_list": [1, 2], "list_order": 3, "station": "shenzhen"},
    )
    assert r.status_code == 200, r.text
    prios = (await client.get("/v1/groups/priorities")).json()["priorities"]
    assert prios == [
        {"id": 7, "name": "sz", "group_list": [1, 2], "list_order": 3, "station": "shenzhen"}
    ]
    assert (await client.delete("/v1/groups/priorities/7")).status_code == 200
    assert (await client.delete("/v1/groups/rules/1")).status_code == 200
    assert (await client.get("/v1/groups/rules")).json()["rules"] == []
    assert (await client.get("/v1/groups/priorities")).json()["priorities"] == []


async def test_settings(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/settings/refresh.interval", json={"value": "3000"})
    assert r.status_code == 200, r.text
    assert r.json()["setting"] == {"name": "refresh.interval", "value": "3000"}
    assert (await client.get("/v1/settings/refresh.interval")).json()["value"] == "3000"
    settings = (await client.get("/v1/settings")).json()["settings"]
    assert settings == [{"name": "refresh.interval", "value": "3000"}]
    assert (await client.delete("/v1/settings/refresh.interval")).status_code == 200
    assert (await client.get("/v1/settings")).json()["settings"] == []


async def test_status_reports_versions_digests_counts(client: httpx.AsyncClient) -> None:
    empty = (await client.get("/v1/status")).json()
    await add(client, "tcp -h 10.0.0.1 -p 1")
    status = (await client.get("/v1/status")).json()
    assert set(status["categories"]) == {"objects", "nodes", "groups", "settings"}
    objects = status["categories"]["objects"]
    assert objects["version"]["revision"] == status["revision"]
    assert objects["digest"] != empty["categories"]["objects"]["digest"]
    assert status["counts"]["objects"] == 1
    assert status["epoch"]


# ---------------------------------------------------------------------------- token


async def test_writes_need_the_token_reads_do_not(core: RegistryCore) -> None:
    app = create_registry_app(admin_of(core), token=TOKEN)
    async with _client(app) as c:
        before = await state_of(c)
        body = {"endpoint": "tcp -h 10.0.0.1 -p 1"}
        r = await c.post(EP, json=body)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert "token" in r.json()["error"]
        # refused before the body is looked at: a malformed body still gets 401
        r = await c.post(EP, content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 401
        r = await c.post(EP, json=body, headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert r.status_code == 401
        r = await c.post(EP, json=body, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 403
        assert "wrong" in r.json()["error"]
        for path in ("/v1/nodes/n1", "/v1/settings/s"):
            assert (await c.put(path, json={"value": "v"})).status_code == 401
            assert (await c.delete(path)).status_code == 401
        r = await c.patch(f"{EP}/10.0.0.1/1", json={"weight": 1})
        assert r.status_code == 401
        assert await state_of(c) == before
        for path in ("/v1/status", "/v1/objects", "/v1/nodes", "/healthz", "/metrics"):
            assert (await c.get(path)).status_code == 200, path
        r = await c.post(EP, json=body, headers={"Authorization": f"bearer {TOKEN}"})
        assert r.status_code == 201, r.text


async def test_without_a_token_writes_are_open(core: RegistryCore) -> None:
    app = create_registry_app(admin_of(core), token=None)
    async with _client(app) as c:
        r = await c.post(EP, json={"endpoint": "tcp -h 10.0.0.1 -p 1"})
        assert r.status_code == 201, r.text


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_listen_safety_allows_loopback_without_token(host: str) -> None:
    check_listen_safety(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "registry.example", ""])
def test_listen_safety_refuses_other_addresses_without_token(host: str) -> None:
    with pytest.raises(UnsafeListenError, match="without an admin token"):
        check_listen_safety(host, None)
    with pytest.raises(UnsafeListenError):
        check_listen_safety(host, "")
    check_listen_safety(host, TOKEN)


# ---------------------------------------------------------------------------- ops


async def test_healthz(core: RegistryCore, tmp_path: Path) -> None:
    async with _client(create_registry_app(admin_of(core), token=None)) as c:
        r = await c.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {
            "status": "ok",
            "revision": core.revision,
            "epoch": core.epoch,
            "epoch_confirmed": True,
            "consecutive_store_failures": 0,
        }
    starting = RegistryCore(core.store)  # never started: not ready
    async with _client(create_registry_app(admin_of(starting), token=None)) as c:
        r = await c.get("/healthz")
        assert r.status_code == 503
        assert "not loaded" in r.json()["error"]
    await starting.aclose()


async def test_metrics(core: RegistryCore) -> None:
    metrics = RegistryMetrics(core, tars_requests=lambda: 42)
    app = create_registry_app(admin_of(core), token=TOKEN, metrics=metrics)
    async with _client(app) as c:
        await c.post(EP, json={"endpoint": "tcp -h 10.0.0.1 -p 1"}, headers=AUTH)
        await c.post(EP, json={"endpoint": "tcp -h 10.0.0.1 -p 2"})  # 401
        await c.get("/v1/objects/Test.Missing.Obj")  # 404
        r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert f"tarscascade_registry_revision {float(core.revision)}" in text
    assert 'tarscascade_registry_records{kind="endpoints"} 1.0' in text
    assert 'tarscascade_registry_category_revision{category="objects"}' in text
    assert "tarscascade_registry_answer_cache_hits_total" in text
    assert "tarscascade_registry_writes_total 1.0" in text
    assert "tarscascade_registry_tars_requests_total 42.0" in text
    route = 'route="/v1/objects/{object_id}/endpoints"'
    assert f'tarscascade_http_requests_total{{method="POST",{route},status="201"}} 1.0' in text
    assert f'tarscascade_http_requests_total{{method="POST",{route},status="401"}} 1.0' in text
    assert 'route="/v1/objects/{object_id}",status="404"' in text


async def test_two_apps_in_one_process_have_separate_metrics(core: RegistryCore) -> None:
    a = create_registry_app(admin_of(core), token=None)
    b = create_registry_app(admin_of(core), token=None)
    async with _client(a) as ca, _client(b) as cb:
        await ca.get("/v1/status")
        assert "/v1/status" not in (await cb.get("/metrics")).text
        assert 'route="/v1/status"' in (await ca.get("/metrics")).text


async def test_openapi_lists_the_routes(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    expected = {
        "/v1/status": {"get"},
        "/v1/objects": {"get"},
        "/v1/objects/{object_id}": {"get"},
        "/v1/objects/{object_id}/endpoints": {"post"},
        "/v1/objects/{object_id}/endpoints/{host}/{port}": {"get", "patch", "delete"},
        "/v1/objects/{object_id}/endpoints/{host}/{port}/state": {"put"},
        "/v1/nodes": {"get"},
        "/v1/nodes/{name}": {"get", "put", "delete"},
        "/v1/groups/rules": {"get"},
        "/v1/groups/rules/{group_id}": {"put", "delete"},
        "/v1/groups/priorities": {"get"},
        "/v1/groups/priorities/{prio_id}": {"put", "delete"},
        "/v1/settings": {"get"},
        "/v1/settings/{name}": {"get", "put", "delete"},
        "/healthz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    post = paths["/v1/objects/{object_id}/endpoints"]["post"]
    assert post["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/v1/objects"]["get"]
    assert (await client.get("/docs")).status_code == 200


async def test_openapi_tells_the_truth_about_errors_and_answers(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert set(schemas["Error"]["required"]) == {"error", "reason"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert "422" not in responses, (method, path)
            ok = next(code for code in responses if code.startswith("2"))
            content = responses[ok].get("content", {})
            if path != "/metrics":  # text; every other answer is a declared model
                ref = content["application/json"]["schema"].get("$ref", "")
                assert ref.startswith("#/components/schemas/"), (method, path, content)
            for code, rsp in responses.items():
                if code.startswith(("4", "5")):
                    err = rsp["content"]["application/json"]["schema"]["$ref"]
                    assert err == "#/components/schemas/Error", (method, path, code)
            assert "400" in responses, (method, path)  # an undeclared ?x= at least
            if method in ("post", "put", "patch", "delete"):
                assert {"400", "401", "403", "413", "503"} <= set(responses), (method, path)
    # the answers really have that shape
    r = await client.get("/v1/objects/bad%20id")
    assert (r.status_code, r.json()["reason"]) == (400, "bad_request")
    r = await client.get("/v1/objects/A.B.Obj")
    assert r.json() == {"error": "not found: object A.B.Obj", "reason": "not_found"}
    r = await client.get("/v1/nope")
    assert (r.status_code, r.json()["reason"]) == (404, "no_route")
    r = await client.delete("/v1/objects/A.B.Obj/endpoints/127.0.0.1/2")
    assert r.json() == {
        "error": 'not found: endpoint "tcp -h 127.0.0.1 -p 2" of A.B.Obj',
        "reason": "not_found",
    }
    r = await client.post(
        EP, json={"endpoint": "tcp -h 10.0.0.1 -p 2"}, headers={"Authorization": ""}
    )
    assert (r.status_code, r.json()["reason"]) == (401, "unauthorized")


async def test_objects_are_paginated_with_a_cursor(client: httpx.AsyncClient) -> None:
    for i in range(5):
        r = await client.post(
            f"/v1/objects/App.S{i}.Obj/endpoints", json={"endpoint": "tcp -h h -p 1"}
        )
        assert r.status_code == 201, r.text
    page = (await client.get("/v1/objects", params={"limit": 2})).json()
    assert [o["object_id"] for o in page["objects"]] == ["App.S0.Obj", "App.S1.Obj"]
    assert (page["total"], page["next_cursor"]) == (5, "App.S1.Obj")
    rest = (
        await client.get("/v1/objects", params={"limit": 10, "cursor": page["next_cursor"]})
    ).json()
    assert [o["object_id"] for o in rest["objects"]] == ["App.S2.Obj", "App.S3.Obj", "App.S4.Obj"]
    assert rest["next_cursor"] is None
    assert rest["revision"] == page["revision"] == 5
    assert (await client.get("/v1/objects", params={"limit": 0})).status_code == 400
    assert (await client.get("/v1/objects", params={"limit": 1001})).status_code == 400
    pre = (await client.get("/v1/objects", params={"prefix": "App.S4"})).json()
    assert [o["object_id"] for o in pre["objects"]] == ["App.S4.Obj"]


async def test_store_failure_is_503_and_changes_nothing(core: RegistryCore) -> None:
    async with _client(create_registry_app(admin_of(core), token=None)) as c:
        before = await state_of(c)
        core.store.close()
        r = await c.post(EP, json={"endpoint": "tcp -h 10.0.0.1 -p 1"})
        assert r.status_code == 503, r.text
        assert r.json()["error"]
        assert await state_of(c) == before
