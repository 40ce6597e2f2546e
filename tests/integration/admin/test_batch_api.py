"""``POST /v1/batch``: endpoint writes all or nothing, in one store transaction.

Every refusal (a bad op anywhere in the list, a missing or existing endpoint, too many
ops, no token, an owned mode) leaves the registry exactly as it was: same revision, same
endpoints. Errors name the op by its index and endpoints the way users write them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tarscascade.admin import RegistryMetrics, create_registry_app
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.batch import MAX_BATCH_OPS
from tarscascade.registry.core import RegistryCore
from tests.integration.admin.harness import AUTH, TOKEN, admin_of

OBJ = "Test.HelloServer.HelloObj"
OTHER = "Test.WorldServer.WorldObj"


def _client(admin: RegistryAdmin, core: RegistryCore) -> httpx.AsyncClient:
    app = create_registry_app(admin, token=TOKEN, metrics=RegistryMetrics(core))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=AUTH
    )


@pytest.fixture
async def client(core: RegistryCore) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(admin_of(core), core) as c:
        yield c


def add(obj: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"op": "add", "object_id": obj, "endpoint": f"tcp -h 10.0.0.1 -p {port}", **extra}


def ref(op: str, obj: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"op": op, "object_id": obj, "host": "10.0.0.1", "port": port, **extra}


async def _state(c: httpx.AsyncClient) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """The registry's revision and every endpoint of both objects, as the API shows them."""
    status = (await c.get("/v1/status")).json()
    eps = {}
    for obj in (OBJ, OTHER):
        r = await c.get(f"/v1/objects/{obj}")
        eps[obj] = r.json()["endpoints"] if r.status_code == 200 else []
    return status["revision"], eps


async def _seed(c: httpx.AsyncClient) -> None:
    r = await c.post("/v1/batch", json={"ops": [add(OBJ, 1), add(OBJ, 2)]})
    assert r.status_code == 200, r.text


async def test_a_batch_applies_every_op_in_order_at_one_revision(
    client: httpx.AsyncClient, core: RegistryCore
) -> None:
    await _seed(client)
    before = core.store.current_revision()
    ops = [
        add(OBJ, 3),
        ref("update", OBJ, 3, weight=7, node_name="host-a"),  # an op may follow one in the batch
        ref("state", OBJ, 1, state="inactive"),
        ref("remove", OBJ, 2),
        add(OTHER, 9, node="host-b"),
    ]
    r = await client.post("/v1/batch", json={"ops": ops})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ops"] == 5
    assert body["events"] == 5
    assert body["applied"] is True
    events = core.store.changes_since(before, 100)
    assert len(events) == 5
    assert body["revision"] == events[-1].revision == core.store.current_revision()
    revision, eps = await _state(client)
    assert revision == body["revision"]
    by_port = {e["port"]: e for e in eps[OBJ]}
    assert sorted(by_port) == [1, 3]
    assert by_port[1]["setting_state"] == "inactive"
    assert (by_port[3]["weight"], by_port[3]["node_name"]) == (7, "host-a")
    assert [e["node_name"] for e in eps[OTHER]] == ["host-b"]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (add(OBJ, 5) | {"endpoint": "tcp -h 10.0.0.1"}, "ops[2]"),  # no port
        (add("not an object id", 5), "ops[2]"),
        (ref("update", OBJ, 1), "ops[2]: nothing to change"),
        (ref("update", OBJ, 1, weight=None), "ops[2]: fields cannot be null: weight"),
        (ref("update", OBJ, 1, set_id="a.*.b"), "ops[2]"),
        (ref("remove", OBJ, 1, host="bad host"), "ops[2]"),
    ],
)
async def test_a_bad_op_anywhere_refuses_the_whole_batch(
    client: httpx.AsyncClient, bad: dict[str, Any], says: str
) -> None:
    await _seed(client)
    before = await _state(client)
    ops = [add(OBJ, 3), ref("state", OBJ, 1, state="inactive"), bad, add(OTHER, 4)]
    r = await client.post("/v1/batch", json={"ops": ops})
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]
    assert await _state(client) == before


@pytest.mark.parametrize("op", ["update", "state", "remove"])
async def test_a_missing_endpoint_fails_the_batch_named_as_users_write_it(
    client: httpx.AsyncClient, op: str
) -> None:
    await _seed(client)
    before = await _state(client)
    extra = {"update": {"weight": 3}, "state": {"state": "inactive"}, "remove": {}}[op]
    ops = [add(OBJ, 3), ref(op, OBJ, 99, **extra)]
    r = await client.post("/v1/batch", json={"ops": ops})
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert f'ops[1] endpoint "tcp -h 10.0.0.1 -p 99" of {OBJ}' in error
    assert "|" not in error  # never the store's internal key
    assert await _state(client) == before  # the add before it was not applied either


async def test_adding_an_existing_endpoint_fails_the_batch_unless_replace(
    client: httpx.AsyncClient,
) -> None:
    await _seed(client)
    before = await _state(client)
    r = await client.post("/v1/batch", json={"ops": [add(OBJ, 3), add(OBJ, 2)]})
    assert r.status_code == 409, r.text
    assert f'ops[1] endpoint "tcp -h 10.0.0.1 -p 2" of {OBJ} exists' in r.json()["error"]
    assert await _state(client) == before
    r = await client.post("/v1/batch", json={"ops": [add(OBJ, 2, replace=True, bak_flag=1)]})
    assert r.status_code == 200, r.text
    _, eps = await _state(client)
    assert [e["bak_flag"] for e in eps[OBJ] if e["port"] == 2] == [1]


async def test_too_many_ops_unknown_ops_and_no_token_change_nothing(
    client: httpx.AsyncClient, core: RegistryCore
) -> None:
    await _seed(client)
    before = await _state(client)
    many = [ref("remove", OBJ, 1)] * (MAX_BATCH_OPS + 1)
    r = await client.post("/v1/batch", json={"ops": many})
    assert r.status_code in (400, 413), r.text
    for body in ({"ops": []}, {"ops": [{"op": "truncate", "object_id": OBJ}]}, {"ops": "x"}):
        r = await client.post("/v1/batch", json=body)
        assert r.status_code == 400, (body, r.text)
    r = await client.post("/v1/batch", json={"ops": [add(OBJ, 3)]}, headers={"Authorization": ""})
    assert r.status_code == 401, r.text
    assert await _state(client) == before


async def test_an_owned_registry_refuses_batches(core: RegistryCore) -> None:
    async with _client(RegistryAdmin(core, owner="db_tars"), core) as c:
        r = await c.post("/v1/batch", json={"ops": [add(OBJ, 3)]})
        assert r.status_code == 409, r.text
        assert "db_tars owns endpoints" in r.json()["error"]
        assert core.store.current_revision() == 0 or not core.catalog.get_object(OBJ)
