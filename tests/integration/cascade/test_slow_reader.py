"""A node that reads its pushes slower than they come keeps its session: a heartbeat
answer stuck behind pushes in the stream is late, not lost, while the upstream keeps
sending. An upstream that sends nothing and does not answer is still left.

(Seen with 1,000 nodes starting at once on 2 cores: every node waited for its first
heartbeat answer behind its snapshot and the fleet's registrations, the registry heard
nothing for 29 s and dropped all 1,000 sessions, which re-subscribed.)"""

from __future__ import annotations

import asyncio

from tarscascade.model import Category
from tarscascade.store import Put
from tarscascade.testing import eventually
from tarscascade.transport import TarsServer
from tarscascade.transport.servant import Current, MaybeAwaitable, Servant
from tarscascade.wire.idl.cascadef import HEARTBEAT
from tarscascade.wire.packets import Result
from tests.integration.cascade.harness import WAIT, Cluster, ep, fast_client_options

ANSWER_DELAY_S = 1.5  # heartbeat answers take this long; the node waits 0.5 s at most


class SlowHeartbeats:
    """The hub's servant, its heartbeat answers held back ``ANSWER_DELAY_S`` (the
    request is taken at once, as a busy reader's is: only the answer is late)."""

    def __init__(self, inner: Servant) -> None:
        self.inner = inner
        self.name = inner.name
        self.heartbeats = 0

    def dispatch(self, current: Current) -> MaybeAwaitable:
        result = self.inner.dispatch(current)
        if current.request.sFuncName != HEARTBEAT.name:
            return result
        self.heartbeats += 1
        return self._later(result)

    async def _later(self, result: MaybeAwaitable) -> Result:
        await asyncio.sleep(ANSWER_DELAY_S)
        return await result if not isinstance(result, tuple) else result


async def _slow_upstream(cluster: Cluster) -> tuple[SlowHeartbeats, TarsServer]:
    reg = await cluster.start_registry()
    await reg.core.write([Put(ep(1))])
    slow = SlowHeartbeats(reg.hub.servant)
    server = TarsServer([slow])
    await server.start()
    return slow, server


async def test_a_node_behind_on_its_pushes_keeps_its_session(cluster: Cluster) -> None:
    slow, server = await _slow_upstream(cluster)
    reg = cluster.registries[0]
    opts = fast_client_options(heartbeat_interval=0.2, call_timeout=0.5)
    try:
        node = cluster.node("slow", [("127.0.0.1", server.port)], options=opts)
        await eventually(node.client.synced.is_set, timeout=WAIT, what="synced")
        # pushes keep coming while every heartbeat answer is late: 3 s of writes
        for i in range(30):
            await reg.core.write([Put(ep(100 + i))])
            await asyncio.sleep(0.1)
        stats = node.client.stats
        assert stats.heartbeats_late >= 3
        assert stats.heartbeat_failures == 0
        assert stats.connects == 1  # never left its upstream
        assert reg.hub.stats.expired == 0  # and the upstream never gave up on it
        assert slow.heartbeats >= 6  # it heard from the node all along
        want = reg.core.catalog.version(Category.OBJECTS)
        await eventually(
            lambda: node.catalog.version(Category.OBJECTS) == want, timeout=WAIT, what="caught up"
        )
    finally:
        await server.aclose()


async def test_an_upstream_that_sends_nothing_and_does_not_answer_is_left(
    cluster: Cluster,
) -> None:
    _, server = await _slow_upstream(cluster)
    opts = fast_client_options(heartbeat_interval=0.2, call_timeout=0.5)
    try:
        node = cluster.node("patient", [("127.0.0.1", server.port)], options=opts)
        await eventually(node.client.synced.is_set, timeout=WAIT, what="synced")
        # no writes: nothing comes but the late answers, 1.5 s apart > 0.5 s
        await eventually(
            lambda: node.client.stats.heartbeat_failures >= 2 and node.client.stats.connects >= 2,
            timeout=WAIT,
            what="the silent upstream left and tried again",
        )
    finally:
        await server.aclose()
