"""ReportObj over TCP: a node reports its servers' present state; checks and effects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tarscascade.model import EndpointRecord, State
from tarscascade.registry.core import RegistryCore
from tarscascade.registry.servants import ReportServant
from tarscascade.store import Put, SqlStore
from tarscascade.transport import Channel, TarsServer
from tarscascade.wire.idl.reportf import (
    AUTH_FAILED,
    NOT_YOURS,
    REPORT_SERVANT,
    REPORT_STATES,
    EndpointStateF,
    ReportStatesReq,
)

OBJ = "Test.HelloServer.HelloObj"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[RegistryCore, Channel]]:
    store = await asyncio.to_thread(SqlStore.open, f"sqlite:///{tmp_path}/r.db")
    core = RegistryCore(store)
    await core.start()
    await core.write(
        [
            Put(EndpointRecord(OBJ, "10.0.0.1", 1, node_name="n1")),
            Put(EndpointRecord(OBJ, "10.0.0.2", 2, node_name="n2")),
        ]
    )
    server = TarsServer([ReportServant(core, token="secret")])
    await server.start()
    ch = Channel("127.0.0.1", server.port)
    try:
        yield core, ch
    finally:
        await ch.aclose()
        await server.aclose()
        await core.aclose()
        store.close()


def states(core: RegistryCore) -> dict[int, State]:
    return {r.port: r.present_state for r in core.catalog.get_object(OBJ)}


async def report(ch: Channel, node: str, token: str, *st: tuple[str, int, str]) -> int:
    req = ReportStatesReq(node, token, [EndpointStateF(OBJ, h, p, s) for h, p, s in st])
    (ret,) = await ch.call(REPORT_SERVANT, REPORT_STATES, req)
    return int(ret)


async def test_a_node_reports_its_own_endpoints(env: tuple[RegistryCore, Channel]) -> None:
    core, ch = env
    rev = core.revision
    assert await report(ch, "n1", "secret", ("10.0.0.1", 1, "inactive")) == 1
    assert states(core) == {1: State.INACTIVE, 2: State.ACTIVE}
    assert core.revision == rev + 1
    assert await report(ch, "n1", "secret", ("10.0.0.1", 1, "inactive")) == 0  # no change
    assert core.revision == rev + 1
    assert await report(ch, "n1", "secret", ("10.0.0.1", 1, "active")) == 1
    assert states(core) == {1: State.ACTIVE, 2: State.ACTIVE}


@pytest.mark.parametrize(
    ("node", "token", "state", "expected"),
    [
        ("n1", "wrong", ("10.0.0.1", 1, "inactive"), AUTH_FAILED),
        ("n1", "secret", ("10.0.0.2", 2, "inactive"), NOT_YOURS),  # n2's endpoint
        ("n1", "secret", ("10.0.0.9", 9, "inactive"), NOT_YOURS),  # unknown endpoint
        ("n1", "secret", ("10.0.0.1", 1, "sleeping"), NOT_YOURS),  # not a state
    ],
)
async def test_bad_reports_change_nothing(
    env: tuple[RegistryCore, Channel],
    node: str,
    token: str,
    state: tuple[str, int, str],
    expected: int,
) -> None:
    core, ch = env
    rev = core.revision
    assert await report(ch, node, token, state) == expected
    assert core.revision == rev
    assert states(core) == {1: State.ACTIVE, 2: State.ACTIVE}
