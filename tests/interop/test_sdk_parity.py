"""The SDK's calls as the real ``@tars/rpc`` server decodes them (issue 11, SDK parity).

``rpc_server.js`` prints every request it dispatched (``REQ {json}``) as @tars/rpc parsed
it: the set flag and set name, the protocol version.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tarscascade.client import Communicator
from tarscascade.testing import eventually
from tarscascade.wire.codec import STRING
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.packets import MESSAGE_TYPE_SETNAME, STATUS_SETNAME_VALUE, TUP_VERSION
from tests.interop.nodeproc import NodeProc, node_server, require_node

pytestmark = pytest.mark.interop

OBJ = "Test.HelloServer.HelloObj"
HELLO = Interface.of("Hello", Method("hello", (Param("name", STRING),), STRING))


@pytest.fixture(scope="module")
def server() -> Iterator[NodeProc]:
    require_node()
    with node_server(["--servant", OBJ]) as srv:
        yield srv


@pytest.fixture
def direct(server: NodeProc) -> tuple[NodeProc, str]:
    return server, f"{OBJ}@tcp -h 127.0.0.1 -p {server.port}"


async def _request(server: NodeProc, name: str) -> dict[str, Any]:
    """The REQ line of the hello(name) call (names are unique per test)."""

    def find() -> dict[str, Any] | None:
        for r in server.requests():
            if r["func"] == "hello" and name.encode().hex() in r["sBuffer"]:
                return r
        return None

    await eventually(lambda: find() is not None, timeout=10, what=f"REQ of hello({name})")
    found = find()
    assert found is not None
    return found


async def test_a_communicator_with_a_set_division_flags_every_call(
    direct: tuple[NodeProc, str],
) -> None:
    server, obj = direct
    async with Communicator(set_division="app.sz.1") as comm:
        assert await comm.proxy(obj, HELLO).invoke("hello", ["set-1"]) == "hello set-1"
    req = await _request(server, "set-1")
    assert req["iMessageType"] & MESSAGE_TYPE_SETNAME
    assert req["status"][STATUS_SETNAME_VALUE] == "app.sz.1"


async def test_a_per_proxy_set_flags_that_proxy_only(direct: tuple[NodeProc, str]) -> None:
    server, obj = direct
    async with Communicator() as comm:
        assert await comm.proxy(obj, HELLO, set_division="app.gz.2").invoke("hello", ["p1"])
        assert await comm.proxy(obj, HELLO).invoke("hello", ["p2"]) == "hello p2"
    flagged, plain = await _request(server, "p1"), await _request(server, "p2")
    assert flagged["iMessageType"] & MESSAGE_TYPE_SETNAME
    assert flagged["status"][STATUS_SETNAME_VALUE] == "app.gz.2"
    assert plain["iMessageType"] & MESSAGE_TYPE_SETNAME == 0
    assert STATUS_SETNAME_VALUE not in plain["status"]


async def test_tup_calls_through_the_proxy(direct: tuple[NodeProc, str]) -> None:
    server, obj = direct
    async with Communicator() as comm:
        proxy = comm.proxy(obj, HELLO, tup=True)
        assert await proxy.invoke("hello", ["tup-1"]) == "hello tup-1"
        assert await comm.proxy(obj, HELLO).invoke("hello", ["tars-1"], tup=True) == "hello tars-1"
    assert (await _request(server, "tup-1"))["iVersion"] == TUP_VERSION
    assert (await _request(server, "tars-1"))["iVersion"] == TUP_VERSION


async def test_a_per_proxy_set_resolves_in_that_set() -> None:
    # nothing listens on this locator: only the query each resolver would send matters
    async with Communicator(locator="tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p 9") as comm:
        comm.proxy(OBJ, HELLO, set_division="app.gz.2")
        comm.proxy(OBJ, HELLO)
        in_set, plain = comm.resolver(OBJ, "app.gz.2"), comm.resolver(OBJ)
        assert in_set is not plain
        assert in_set.query.args(OBJ) == (OBJ, "app.gz.2")  # type: ignore[union-attr]
        assert in_set.query.method.name == "findObjectByIdInSameSet"  # type: ignore[union-attr]
        assert plain.query.method.name == "findObjectByIdInSameGroup"  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="set division"):
            comm.proxy(OBJ, HELLO, set_division="app.*.1")
