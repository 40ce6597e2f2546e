"""Write answers over HTTP: preconditions (409), committed-but-catching-up, /healthz truth."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tarscascade.admin import RegistryMetrics, create_registry_app
from tarscascade.errors import StoreError
from tarscascade.model import EndpointRecord
from tarscascade.registry.core import RegistryCore
from tarscascade.store import Put, SqlStore
from tarscascade.testing import eventually
from tests.integration.admin.harness import AUTH, TOKEN, admin_of

OBJ = "Test.HelloServer.HelloObj"
EP = f"/v1/objects/{OBJ}/endpoints"
ONE = f"{EP}/10.0.0.1/1"


@pytest.fixture
async def client(core: RegistryCore) -> AsyncIterator[httpx.AsyncClient]:
    metrics = RegistryMetrics(core)
    app = create_registry_app(admin_of(core), token=TOKEN, metrics=metrics)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=AUTH
    ) as c:
        yield c


async def _add(c: httpx.AsyncClient, port: int = 1, **extra: Any) -> dict[str, Any]:
    r = await c.post(EP, json={"endpoint": f"tcp -h 10.0.0.1 -p {port} -w 10", **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_if_match_refuses_a_write_based_on_a_stale_read(client: httpx.AsyncClient) -> None:
    await _add(client)
    read = await client.get(ONE)
    etag = read.headers["ETag"]
    status = (await client.get("/v1/status")).json()
    assert etag == f'"{status["epoch"]}:{status["revision"]}"'
    # someone else changes it after our read
    assert (await client.patch(ONE, json={"weight": 20})).status_code == 200
    stale = await client.patch(ONE, json={"weight": 30}, headers={"If-Match": etag})
    assert stale.status_code == 409, stale.text
    assert "changed at revision" in stale.json()["error"]
    assert (await client.get(ONE)).json()["weight"] == 20  # nothing changed
    fresh = (await client.get(ONE)).headers["ETag"]
    ok = await client.patch(ONE, json={"weight": 30}, headers={"If-Match": fresh})
    assert ok.status_code == 200, ok.text
    assert ok.json()["endpoint"]["weight"] == 30


async def test_if_revision_ignores_changes_to_other_records(client: httpx.AsyncClient) -> None:
    first = await _add(client, 1)
    await _add(client, 2)  # another endpoint changes after the read: no conflict
    r = await client.put(
        f"{ONE}/state", json={"state": "inactive"}, params={"if_revision": first["revision"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["endpoint"]["setting_state"] == "inactive"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", ONE, None),
        ("PUT", f"{ONE}/state", {"state": "inactive"}),
        ("PATCH", ONE, {"weight": 5}),
        ("PUT", "/v1/settings/s1", {"value": "v"}),
        ("DELETE", "/v1/settings/s1", None),
        ("PUT", "/v1/nodes/n1", {"host": "10.0.0.3"}),
    ],
)
async def test_every_write_takes_a_precondition(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    await _add(client)
    await client.put("/v1/settings/s1", json={"value": "a"})
    await client.put("/v1/nodes/n1", json={})
    before = (await client.get("/v1/status")).json()["revision"]
    await client.patch(ONE, json={"weight": 11})  # changes after `before`
    await client.put("/v1/settings/s1", json={"value": "b"})
    await client.put("/v1/nodes/n1", json={"port": 7})
    snapshot = (await client.get("/v1/status")).json()
    r = await client.request(method, path, json=body, params={"if_revision": before})
    assert r.status_code == 409, r.text
    assert (await client.get("/v1/status")).json() == snapshot  # nothing changed


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"If-Match": "*"}, {}),
        ({"If-Match": '"a:1", "b:2"'}, {}),
        ({"If-Match": '"no-revision"'}, {}),
        ({"If-Match": '"e:1"'}, {"if_revision": 1}),
        ({}, {"if_revision": -1}),
    ],
)
async def test_bad_preconditions_are_400(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any]
) -> None:
    await _add(client)
    r = await client.patch(ONE, json={"weight": 5}, headers=headers, params=params)
    assert r.status_code == 400, r.text


async def test_an_if_match_from_another_epoch_is_409(client: httpx.AsyncClient) -> None:
    added = await _add(client)
    r = await client.patch(
        ONE, json={"weight": 5}, headers={"If-Match": f'"another-epoch:{added["revision"]}"'}
    )
    assert r.status_code == 409
    assert "epoch" in r.json()["error"]


async def test_adding_an_existing_endpoint_is_409_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await _add(client)
    r = await client.post(EP, json={"endpoint": "tcp -h 10.0.0.1 -p 1 -w 99"})
    assert r.status_code == 409, r.text
    assert (await client.get(ONE)).json()["weight"] == 10


async def test_a_committed_write_answers_2xx_while_the_catalog_catches_up(
    client: httpx.AsyncClient, core: RegistryCore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = core.store.changes_since
    failing = [True]

    def flaky(revision: int, limit: int = 1000) -> Any:
        if failing:
            raise StoreError("changes_since failed: connection reset")
        return real(revision, limit)

    # a write by another registry on the database first: the next write cannot apply its
    # own events alone, it catches up from the change log (the read that fails here)
    other = SqlStore.open(f"sqlite:///{tmp_path}/r.db")  # the harness's database
    try:
        other.commit([Put(EndpointRecord(OBJ, "10.0.0.9", 9))])
    finally:
        other.close()
    monkeypatch.setattr(core.store, "changes_since", flaky)
    r = await client.post(EP, json={"endpoint": "tcp -h 10.0.0.1 -p 1"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["applied"] is False
    assert f"committed at revision {body['revision']}" in body["note"]
    failing.clear()
    await core.catch_up()
    assert (await client.get(ONE)).status_code == 200
    retry = await client.post(EP, json={"endpoint": "tcp -h 10.0.0.1 -p 1"})
    assert retry.status_code == 409  # the first one did happen


async def test_healthz_turns_503_after_consecutive_tail_failures_and_recovers(
    client: httpx.AsyncClient, core: RegistryCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = core.store.changes_since
    broken = [True]
    calls = [0]

    def flaky(revision: int, limit: int = 1000) -> Any:
        calls[0] += 1
        if broken:
            raise StoreError('changes_since failed: (2003, "Can\'t connect to MySQL server")')
        return real(revision, limit)

    monkeypatch.setattr(core.store, "changes_since", flaky)
    core.options.tail_interval = 0.01
    n = core.options.unhealthy_after
    loops = asyncio.create_task(core.run())
    try:
        await eventually(lambda: core.failures >= n, what=f"{n} failed tail rounds")
        r = await client.get("/healthz")
        assert r.status_code == 503
        assert "consecutive store operations failed" in r.json()["error"]
        assert "Can't connect" in r.json()["error"]
        assert r.json()["reason"] == "unavailable"
        metrics = (await client.get("/metrics")).text
        assert "tarscascade_registry_healthy 0.0" in metrics
        assert "tarscascade_registry_store_consecutive_failures" in metrics
        broken.clear()
        await eventually(lambda: core.failures == 0, what="a tail round that worked")
        assert (await client.get("/healthz")).status_code == 200
        assert "tarscascade_registry_healthy 1.0" in (await client.get("/metrics")).text
    finally:
        loops.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loops
