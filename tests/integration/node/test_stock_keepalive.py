"""Stock TARS servers' ServerF calls replayed against a real node (issue 11).

A registry process and a node agent over real TCP; the TarsCpp and TarsGo beat
schedules (``tests/interop/serverf_beats.py``, with their real timings) are sent as real
``ServerF`` requests to the node's ``tars.tarsnode.ServerObj``. Only time is faked: the
node's clock is stepped to each call's time, and after every step the test waits for the
node's report loop to pass at least once, then checks what the registry holds. Between
steps the clock stands still, so the checks right before each beat (the worst moments)
cover the whole run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tarscascade.cascade import ClientOptions
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.model import EndpointRecord, State
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.serverf import (
    KEEP_ACTIVING,
    KEEP_ALIVE,
    NODE_SERVANT,
    REPORT_VERSION,
    ServerInfo,
)
from tests.interop.serverf_beats import (
    TARSCPP_VERSION,
    TARSGO_VERSION,
    Call,
    last_beat,
    merged,
    tarscpp,
    tarsgo,
)

TIMEOUT = 30.0  # the node's default keepalive timeout
HELLO = "Test.HelloServer.HelloObj"
FOO = "Test.HelloServer.FooObj"
GO = "Test.GoServer.GoObj"
FAST = ClientOptions(heartbeat_interval=0.5, reconnect_initial=0.05, reconnect_max=0.3)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    registry: RegistryProcess
    node: NodeAgent
    clock: FakeClock
    admin: RegistryAdmin
    channel: Channel
    t0: float

    async def add(self, obj: str, port: int, **fields: object) -> None:
        rec = self.admin.build_endpoint(obj, f"tcp -h 127.0.0.1 -p {port}", node_name="n1")
        await self.admin.add_endpoint(dataclasses.replace(rec, **fields))  # type: ignore[arg-type]
        await eventually(lambda: self._find(self.node, obj, port) is not None, timeout=20)

    def _find(
        self, where: NodeAgent | RegistryProcess, obj: str, port: int
    ) -> EndpointRecord | None:
        catalog = where.catalog if isinstance(where, NodeAgent) else where.core.catalog  # type: ignore[union-attr]
        return next((r for r in catalog.get_object(obj) if r.port == port), None)

    def registry_record(self, obj: str, port: int) -> EndpointRecord:
        r = self._find(self.registry, obj, port)
        assert r is not None
        return r

    async def send(self, c: Call) -> None:
        pid = 4242 if c.server == "HelloServer" else 4343
        if c.func == "reportVersion":
            (ret,) = await self.channel.call(
                NODE_SERVANT, REPORT_VERSION, c.app, c.server, c.version
            )
        else:
            info = ServerInfo(c.app, c.server, pid, c.adapter)
            method = KEEP_ALIVE if c.func == "keepAlive" else KEEP_ACTIVING
            (ret,) = await self.channel.call(NODE_SERVANT, method, info)
        assert ret == 0, c

    async def at(self, t: float) -> None:
        """Step the node's clock to ``t`` (s since start); wait for a full report pass
        and for the registry to hold what the node decided."""
        self.clock.now = self.t0 + t
        start = self.node.report_rounds
        await eventually(lambda: self.node.report_rounds >= start + 2, timeout=20)
        await eventually(self._settled, timeout=20, what="registry holds the node's decision")

    def _settled(self) -> bool:
        ka, now = self.node.keepalive, self.clock()
        for mine in self.node.catalog.endpoints_of_node("n1"):
            held = self.registry_record(mine.object_id, mine.port)
            want = ka.desired(held, now) or held.present_state
            if held.present_state != want or mine.present_state != want:
                return False
        return True

    async def replay(
        self, calls: list[Call], watch: list[tuple[str, int]], until: float
    ) -> list[tuple[float, list[State]]]:
        """Send ``calls`` at their times; the registry's present state of each watched
        endpoint right after each batch of calls and right before the next batch."""
        seen: list[tuple[float, list[State]]] = []
        times = sorted({c.at for c in calls})
        for i, t in enumerate(times):
            await self.at(t)
            for c in calls:
                if c.at == t:
                    await self.send(c)
            nxt = times[i + 1] - 0.001 if i + 1 < len(times) else until
            for when in (t, nxt):
                await self.at(when)
                seen.append((when, [self.registry_record(o, p).present_state for o, p in watch]))
        return seen


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    cfg = RegistryConfig(
        db=f"sqlite:///{tmp_path}/registry.db",
        listen=("127.0.0.1", 0),
        http=None,
        options=RegistryOptions(tail_interval=0.1, reload_interval=0),
    )
    rp = RegistryProcess(cfg)
    await rp.start()
    clock = FakeClock()
    agent = NodeAgent(
        NodeConfig(
            name="n1",
            upstreams=[("127.0.0.1", rp.tars_port)],
            listen=("127.0.0.1", 0),
            keepalive_timeout=TIMEOUT,
            report_interval=0.02,
            client_options=FAST,
            clock=clock,
        )
    )
    try:
        await agent.start()
        assert agent.client is not None
        assert rp.core is not None
        await eventually(agent.client.synced.is_set, timeout=30)
        async with Channel("127.0.0.1", agent.port) as ch:
            yield Rig(rp, agent, clock, RegistryAdmin(rp.core, hub=rp.hub), ch, clock.now)
    finally:
        await agent.aclose()
        await rp.aclose()


@pytest.mark.parametrize("shape", ["tarscpp", "tarsgo"])
async def test_a_stock_server_stays_active_for_5x_the_timeout_and_leaves_after_it(
    rig: Rig, shape: str
) -> None:
    await rig.add(HELLO, 9000)
    adapter = HELLO + "Adapter"
    until = 5 * TIMEOUT
    if shape == "tarscpp":
        calls = tarscpp("Test", "HelloServer", [adapter], until)
    else:
        calls = tarsgo("Test", "HelloServer", [adapter], until, seed=1)
    seen = await rig.replay(calls, [(HELLO, 9000)], until)
    assert seen[-1][0] == until
    # active the whole time (the start-up keepActiving is at t=0, before keepAlive(""))
    assert all(s == [State.ACTIVE] for t, s in seen if t > 0), seen
    last = last_beat(calls, "Test", "HelloServer")
    await rig.at(last + TIMEOUT - 0.01)
    assert rig.registry_record(HELLO, 9000).present_state is State.ACTIVE
    beat = 11.0 if shape == "tarscpp" else 10.0
    await rig.at(last + TIMEOUT + beat)  # "within timeout + one beat after they stop"
    assert rig.registry_record(HELLO, 9000).present_state is State.INACTIVE
    rec = rig.registry_record(HELLO, 9000)
    assert rec.tars_version == (TARSCPP_VERSION if shape == "tarscpp" else TARSGO_VERSION)
    assert rec.adapter == adapter


async def test_keepactiving_alone_never_makes_the_endpoint_present(rig: Rig) -> None:
    await rig.add(HELLO, 9000, present_state=State.INACTIVE)
    init = 2 * TIMEOUT
    calls = tarscpp("Test", "HelloServer", [HELLO + "Adapter"], init + TIMEOUT, init=init)
    activating = [c for c in calls if c.func == "keepActiving"]
    seen = await rig.replay(activating, [(HELLO, 9000)], init - 0.01)
    assert all(s == [State.INACTIVE] for _, s in seen), seen
    rest = [c for c in calls if c.func != "keepActiving"]
    seen = await rig.replay(rest, [(HELLO, 9000)], init + TIMEOUT)
    assert all(s == [State.ACTIVE] for _, s in seen), seen


async def test_two_servers_several_adapters_on_one_node(rig: Rig) -> None:
    """TarsCpp HelloServer with two adapters on two ports (and one named explicitly),
    TarsGo GoServer beside it. GoServer stops at 100 s: only its endpoint goes; the
    HelloServer beats on for the whole run."""
    await rig.add(HELLO, 9000)
    await rig.add(FOO, 9001, adapter_name="FooAdapter")
    await rig.add(GO, 9100)
    until = 5 * TIMEOUT
    calls = merged(
        tarscpp("Test", "HelloServer", [HELLO + "Adapter", "FooAdapter"], until),
        tarsgo("Test", "GoServer", [GO + "Adapter"], 100, seed=2),
    )
    watch = [(HELLO, 9000), (FOO, 9001), (GO, 9100)]
    seen = await rig.replay(calls, watch, until)
    stop_go = last_beat(calls, "Test", "GoServer")
    for t, states in seen:
        if 0 < t <= stop_go + TIMEOUT:
            assert states == [State.ACTIVE] * 3, (t, states)
        elif t > stop_go + TIMEOUT + 10:
            assert states == [State.ACTIVE, State.ACTIVE, State.INACTIVE], (t, states)
    assert rig.registry_record(GO, 9100).tars_version == TARSGO_VERSION
    assert rig.registry_record(FOO, 9001).tars_version == TARSCPP_VERSION
    view = {s["server"]: s for s in rig.node.status()["servers"]}
    assert view["HelloServer"]["state"] == "active"
    assert view["GoServer"]["state"] == "silent"
    assert set(view["HelloServer"]["adapters"]) == {HELLO + "Adapter", "FooAdapter"}  # type: ignore[arg-type]
