"""Set routing and IDC grouping: the client resolves exactly what the registry answers for
its identity, and calls only those endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from tarscascade.client import Communicator
from tarscascade.client.resolver import to_endpoints
from tarscascade.errors import NoEndpointError
from tarscascade.model import GroupPriority, GroupRule
from tarscascade.store import Put
from tarscascade.wire.idl.queryf import QUERY_F
from tests.integration.client.cluster import IFACE, OBJ, Cluster


async def registry_answer(cluster: Cluster, method: str, caller: str, arg: str = "") -> Any:
    data = cluster.reg.answerer.answer(method, OBJ, caller, arg)
    ret, active, inactive = QUERY_F[method].decode_result(data)
    return ret, to_endpoints(OBJ, active), to_endpoints(OBJ, inactive)


async def ports_called(comm: Communicator, n: int = 6) -> set[int]:
    p = comm.proxy(OBJ, IFACE)
    return {(await p.invoke_detailed("hello", ["x"])).endpoint.port for _ in range(n)}


@pytest.fixture
async def idc(cluster: Cluster) -> dict[str, int]:
    await cluster.reg.write(
        [
            Put(GroupRule(1, "gz", allow_ip_rule=("10.1.1.*",))),
            Put(GroupRule(2, "sz", allow_ip_rule=("10.2.2.*",))),
            Put(GroupPriority(1, "south", group_list=(2,), station="shenzhen")),
        ]
    )
    gz, _ = await cluster.servant(enable_group=True, ip_group_name="gz")
    sz, _ = await cluster.servant(enable_group=True, ip_group_name="sz")
    plain, _ = await cluster.servant()
    return {"gz": gz.port, "sz": sz.port, "plain": plain.port}


@pytest.mark.parametrize(
    ("node_name", "station", "method", "caller", "expect"),
    [
        ("10.1.1.5", "", "findObjectByIdInSameGroup", "10.1.1.5", {"gz"}),
        ("10.2.2.5", "", "findObjectByIdInSameGroup", "10.2.2.5", {"sz"}),
        # no node name: the registry keys on the peer IP, in no group: everything
        (None, "", "findObjectByIdInSameGroup", "127.0.0.1", {"gz", "sz", "plain"}),
        ("10.1.1.5", "shenzhen", "findObjectByIdInSameStation", "10.1.1.5", {"sz"}),
    ],
    ids=["group-gz", "group-sz", "ungrouped", "station"],
)
async def test_idc_grouping_matches_the_registry(
    cluster: Cluster,
    idc: dict[str, int],
    node_name: str | None,
    station: str,
    method: str,
    caller: str,
    expect: set[str],
) -> None:
    arg = station
    ret, active, inactive = await registry_answer(cluster, method, caller, arg)
    assert ret == 0
    async with Communicator(locator=cluster.locator, node_name=node_name, station=station) as comm:
        called = await ports_called(comm)
        r = comm.resolver(OBJ)
        assert r.query.method.name == method
        assert (r.endpoints.active, r.endpoints.inactive) == (active, inactive)
        assert called == {idc[k] for k in expect}


@pytest.fixture
async def sets(cluster: Cluster) -> dict[str, int]:
    s1, _ = await cluster.servant(set_id="app.sz.1")
    s2, _ = await cluster.servant(set_id="app.sz.2")
    plain, _ = await cluster.servant()
    return {"s1": s1.port, "s2": s2.port, "plain": plain.port}


@pytest.mark.parametrize(
    ("set_division", "expect"),
    [
        ("app.sz.1", {"s1"}),
        ("app.sz.2", {"s2"}),
        ("app.sz.*", {"s1", "s2"}),
        ("other.sz.1", {"s1", "s2", "plain"}),  # no such set name: IDC logic
        ("", {"s1", "s2", "plain"}),  # set off: findObjectByIdInSameGroup
    ],
)
async def test_set_routing_matches_the_registry(
    cluster: Cluster, sets: dict[str, int], set_division: str, expect: set[str]
) -> None:
    method = "findObjectByIdInSameSet" if set_division else "findObjectByIdInSameGroup"
    ret, active, _ = await registry_answer(cluster, method, "127.0.0.1", set_division)
    assert ret == 0
    async with Communicator(locator=cluster.locator, set_division=set_division) as comm:
        assert await ports_called(comm) == {sets[k] for k in expect}
        assert comm.resolver(OBJ).endpoints.active == active


async def test_a_set_the_registry_refuses_leaves_no_endpoint(
    cluster: Cluster, sets: dict[str, int]
) -> None:
    ret, _, _ = await registry_answer(cluster, "findObjectByIdInSameSet", "x", "app.gz.1")
    assert ret == -1
    async with Communicator(locator=cluster.locator, set_division="app.gz.1") as comm:
        with pytest.raises(NoEndpointError, match="returned -1"):
            await comm.proxy(OBJ, IFACE).invoke("hello", ["x"])
