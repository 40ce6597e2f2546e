"""One node-name rule for every interface (review finding 15).

Every name the rule accepts round-trips through each interface that takes a node name:
the cascade (a node subscribes under it and is registered), the admin API (a node record
is created, read, changed and removed; an endpoint names it and is then updated), the
CLI's local check and the node agent's configuration. Every name it refuses is refused
by each of them, and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import typer

from tarscascade.admin import create_registry_app
from tarscascade.cli.registry_client import EXIT_USAGE, check_node_name
from tarscascade.model import is_node_name
from tarscascade.node.app import NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.cascadef import BAD_REQUEST, CASCADE_SERVANT, SUBSCRIBE, SubscribeReq
from tests.integration.admin.harness import AUTH, TOKEN
from tests.integration.cascade.harness import TOKEN as CASCADE_TOKEN
from tests.integration.cascade.harness import WAIT, Cluster, Registry

ACCEPTED = [
    "node-1",
    "10.0.0.1",
    "::1",  # IPv6 addresses are TARS node names: a leading ':' is fine
    "fe80::1:2",
    "web.dc1",
    "web_dc1",
    "web:dc1",
    "_x",
    "host.example.com.",
    "N" * 128,
]
REFUSED = [
    "web@dc1",  # the '@' of TARS object strings and URL authorities
    "",
    "a b",
    "a/b",
    "a?b",
    "a#b",
    "a%2Fb",
    "a|b",
    ".",
    "..",
    ".hidden",
    "-x",
    "a\nb",
    "web\n",
    "节点-1",
    "N" * 129,
]
OBJ = "Test.HelloServer.HelloObj"


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Registry, httpx.AsyncClient]]:
    cluster = Cluster(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        reg = await cluster.start_registry()
        app = create_registry_app(RegistryAdmin(reg.core, reg.hub), token=TOKEN)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", follow_redirects=True
        ) as c:
            c.headers.update(AUTH)
            yield cluster, reg, c
    finally:
        await cluster.aclose()


def _node_url(name: str) -> str:
    return "/v1/nodes/" + quote(name, safe="")


def test_the_rule_is_what_these_tables_say() -> None:
    assert all(is_node_name(n) for n in ACCEPTED)
    assert not any(is_node_name(n) for n in REFUSED)


@pytest.mark.parametrize("name", ACCEPTED)
async def test_an_accepted_name_round_trips_through_every_interface(
    setup: tuple[Cluster, Registry, httpx.AsyncClient], name: str
) -> None:
    cluster, reg, c = setup
    # the CLI and the node agent take it
    assert check_node_name(name) == name
    assert NodeConfig(name=name, upstreams=[("127.0.0.1", reg.port)]).name == name

    # the cascade: the node subscribes and is registered under that name
    cluster.node(name, [("127.0.0.1", reg.port)])
    await eventually(lambda: reg.core.catalog.get_node(name) is not None, timeout=WAIT)
    assert name in reg.hub.node_states()

    # the admin API: read, change, and an endpoint hosted there can be added and updated
    r = await c.get(_node_url(name))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == name
    r = await c.put(_node_url(name), json={"state": "inactive"})
    assert r.status_code == 200, r.text
    r = await c.post(
        f"/v1/objects/{OBJ}/endpoints", json={"endpoint": "tcp -h 10.0.0.9 -p 9", "node": name}
    )
    assert r.status_code == 201, r.text
    r = await c.patch(f"/v1/objects/{OBJ}/endpoints/10.0.0.9/9", json={"weight": 5})
    assert r.status_code == 200, r.text
    # ... and removed
    r = await c.delete(_node_url(name))
    assert r.status_code == 200, r.text
    assert reg.core.catalog.get_node(name) is None

    # a fresh record: create, read, remove
    other = name[:-1] + ("a" if name[-1] != "a" else "b")
    r = await c.put(_node_url(other), json={})
    assert r.status_code == 200, r.text
    r = await c.get(_node_url(other))
    assert (r.status_code, r.json()["name"]) == (200, other)
    r = await c.delete(_node_url(other))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("name", REFUSED, ids=repr)
async def test_a_refused_name_is_refused_by_every_interface(
    setup: tuple[Cluster, Registry, httpx.AsyncClient], name: str
) -> None:
    _, reg, c = setup
    revision = reg.core.revision

    with pytest.raises(typer.Exit) as exited:
        check_node_name(name)
    assert exited.value.exit_code == EXIT_USAGE
    with pytest.raises(ValueError, match="node name"):
        NodeConfig(name=name, upstreams=[("127.0.0.1", reg.port)])
    with pytest.raises(ValueError, match="node name"):
        NodeConfig(name="good", upstreams=[("127.0.0.1", 1)], relays={("127.0.0.1", 1): name})

    async with Channel("127.0.0.1", reg.port) as ch:
        ret, _ = await ch.call(
            CASCADE_SERVANT, SUBSCRIBE, SubscribeReq(nodeName=name, token=CASCADE_TOKEN)
        )
    assert ret == BAD_REQUEST

    # (``""``, ``.`` and ``..`` cannot even be addressed: the URL names the node list)
    answers: list[Any] = []
    for method, body in (("PUT", {}), ("DELETE", None)):
        r = await c.request(method, _node_url(name), json=body)
        answers.append((method, r.status_code))
        assert 400 <= r.status_code < 500, (method, r.text)
    r = await c.get(_node_url(name))
    assert r.status_code >= 400 or r.json().get("name") != name, r.text
    if name:  # an endpoint's node "" means "no node" (ungoverned)
        r = await c.post(
            f"/v1/objects/{OBJ}/endpoints",
            json={"endpoint": "tcp -h 10.0.0.9 -p 9", "node": name},
        )
        assert r.status_code == 400, r.text
    assert reg.core.revision == revision, answers  # nothing written
    assert name not in reg.hub.node_states()
