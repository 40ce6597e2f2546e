"""A registry tier on one database (review B1, C2; issue 15): one liveness judge over the
sightings of every registry, no flapping, judge failover, drains that wait for every
registered node wherever it is connected, offline nodes named, the last endpoint kept.

On the code before the tier work each of these failed: every registry judged only the
nodes connected to it (nodes on the others flapped dead/alive), and a drain waited only
for the nodes connected to the registry it ran on.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tarscascade.errors import ConflictError
from tarscascade.model import Category, EndpointRecord, NodeRecord, State
from tarscascade.registry.presence import due_sightings
from tarscascade.store import Put
from tarscascade.testing import eventually
from tests.integration.admin.test_drain import mute_subscriber
from tests.integration.cli.test_cli import failed, ok, run_cli
from tests.integration.registry.tier_harness import TIER, WAIT, Tier, tier

OBJ = "Test.TierServer.TierObj"
HOST = "10.0.0.1"


def _active(agent_catalog: object, port: int) -> bool:
    from tarscascade.catalog import Catalog

    assert isinstance(agent_catalog, Catalog)
    recs = [r for r in agent_catalog.get_object(OBJ) if r.port == port]
    return bool(recs) and agent_catalog.is_active(recs[0])


async def _endpoints(t: Tier, *ports: int, node: str = "") -> None:
    await t.core(0).write([Put(EndpointRecord(OBJ, HOST, p, node_name=node)) for p in ports])
    await t.converged()


async def test_one_judge_no_flap_and_a_dead_node_is_judged_once(db_url: str) -> None:
    async with tier(db_url, 3) as t:
        names = [f"n{i}" for i in range(6)]
        for k, name in enumerate(names):
            await t.add_node_on(name, k % 3)
        await t.registered_everywhere(names)
        await _endpoints(t, *range(1, 7))
        await eventually(lambda: len(t.judges()) == 1, timeout=WAIT, what="a judge")
        nodes_version = t.core(0).catalog.version(Category.NODES)

        # four node timeouts of heartbeats, nodes on every registry: nothing is judged
        # dead, and never more than one registry judges
        timeout = TIER.node_timeout
        end = time.monotonic() + 4 * timeout
        while time.monotonic() < end:
            assert len(t.judges()) <= 1, t.judges()
            await asyncio.sleep(0.2)
        await t.core(0).catch_up()
        assert t.core(0).catalog.version(Category.NODES) == nodes_version, "a node flapped"
        assert sum(t.core(i).stats.liveness_events for i in range(3)) == 0
        (judge,) = t.judges()

        # a node of another registry dies: judged dead once, within timeout + lease
        other = next(i for i in range(3) if i != judge)
        victim = f"n{other}"  # n<i> is on registry i
        assert t.nodes[victim].client is not None
        assert t.nodes[victim].client.upstream == ("127.0.0.1", t.port(other))
        gone = time.monotonic()
        await t.nodes.pop(victim).aclose()
        await eventually(
            lambda: (
                (r := t.record(victim, judge)) is not None and r.present_state is State.INACTIVE
            ),
            timeout=WAIT,
            what=f"{victim} judged dead",
        )
        took = time.monotonic() - gone
        # never before its timeout (its last heartbeat may precede the close by one
        # heartbeat interval); the upper bound is the claim plus a loaded machine's slack
        assert took >= timeout - 1.0, took
        assert took <= timeout + TIER.lease_ttl + 2.0, took

        def events() -> int:
            return sum(t.core(i).stats.liveness_events for i in range(3))

        # the writer counts the event once its own catalog applied the write, which may
        # be after another registry showed it
        await eventually(lambda: events() >= 1, timeout=WAIT, what="the event counted")
        await asyncio.sleep(2 * TIER.liveness_interval)  # more rounds judge nothing more
        assert events() == 1, events()  # one judge wrote it, once
        for name in names:
            if name != victim:
                rec = t.record(name, 0)
                assert rec is not None
                assert rec.present_state is State.ACTIVE, name


async def test_the_judge_stops_and_another_takes_over(db_url: str) -> None:
    async with tier(db_url, 3) as t:
        for k in range(3):
            await t.add_node_on(f"n{k}", k)
        await t.registered_everywhere(["n0", "n1", "n2"])
        await eventually(lambda: len(t.judges()) == 1, timeout=WAIT, what="a judge")
        (judge,) = t.judges()
        rp = t.registries[judge]
        stopped = time.monotonic()
        await rp.aclose()  # a clean stop gives the lease up
        survivors = [i for i in range(3) if i != judge]
        await eventually(
            lambda: len([i for i in t.judges() if i in survivors]) == 1,
            timeout=WAIT,
            what="a new judge",
        )
        assert time.monotonic() - stopped <= TIER.lease_ttl + 2 * TIER.liveness_interval + 2.0
        # the stopped registry's nodes fail over; nobody is judged dead meanwhile
        end = time.monotonic() + 2 * TIER.node_timeout
        while time.monotonic() < end:
            for name in ("n0", "n1", "n2"):
                rec = t.record(name, survivors[0])
                assert rec is not None
                assert rec.present_state is State.ACTIVE, name
            await asyncio.sleep(0.2)


async def test_a_judge_that_dies_without_releasing_is_replaced_after_its_lease(
    db_url: str,
) -> None:
    async with tier(db_url, 2) as t:
        await eventually(lambda: len(t.judges()) == 1, timeout=WAIT, what="a judge")
        (judge,) = t.judges()
        tier_state = t.core(judge).tier
        assert tier_state is not None
        died = time.monotonic()
        tier_state.give_up()  # a process that dies never releases its lease
        await t.registries[judge].aclose()
        other = 1 - judge
        await eventually(lambda: t.judges() == [other], timeout=WAIT, what="a new judge")
        took = time.monotonic() - died
        # not before the dead judge's lease ran out, and soon after
        assert took >= TIER.lease_ttl - TIER.liveness_interval - 0.1, took
        assert took <= TIER.lease_ttl + 2 * TIER.liveness_interval + 2.0, took


async def test_a_drain_waits_for_nodes_on_every_registry_and_behind_relays(
    db_url: str,
) -> None:
    async with tier(db_url, 2) as t:
        await t.add_node_on("on-a", 0)
        on_b = await t.add_node_on("on-b", 1)
        await t.add_node("leaf", [("127.0.0.1", on_b.port)])  # through a relay on B
        await t.registered_everywhere(["on-a", "on-b", "leaf"])
        await _endpoints(t, 1, 2)

        res = await t.admin(0).drain(OBJ, HOST, 1, timeout=WAIT)
        # the moment it returns, every node already serves the endpoint inactive
        states = {name: _active(a.catalog, 1) for name, a in t.nodes.items()}
        assert res.complete, res
        assert res.nodes == ["leaf", "on-a", "on-b"]
        assert res.offline == []
        assert states == {"leaf": False, "on-a": False, "on-b": False}


async def test_a_drain_on_one_registry_waits_for_a_slow_node_on_another(
    db_url: str,
) -> None:
    """A node on registry B that does not acknowledge keeps a drain on A incomplete:
    its acknowledgement could only have come through the database."""
    async with tier(db_url, 2) as t:
        on_a = await t.add_node_on("on-a", 0)
        await t.registered_everywhere(["on-a"])
        await _endpoints(t, 1, 2)
        async with mute_subscriber(t.registries[1], on_a):
            await t.registered_everywhere(["mute"])
            tier_a = t.core(0).tier
            assert tier_a is not None
            await eventually(
                lambda: "mute" in tier_a.table.newest(), timeout=WAIT, what="mute sighted"
            )
            res = await t.admin(0).drain(OBJ, HOST, 1, timeout=1.0)
        assert not res.complete
        assert res.nodes == ["mute", "on-a"]
        assert res.missing == ["mute"]
        assert not _active(on_a.catalog, 1)


async def test_offline_nodes_are_named_and_the_cli_fails_unless_allowed(
    db_url: str, tmp_path: Path
) -> None:
    async with tier(db_url, 2, http=True) as t:
        await t.add_node_on("on-a", 0)
        await t.add_node_on("gone", 1)
        await t.registered_everywhere(["on-a", "gone"])
        await _endpoints(t, 1, 2, 3)
        await t.nodes.pop("gone").aclose()
        await eventually(
            lambda: (r := t.record("gone", 0)) is not None and r.present_state is State.INACTIVE,
            timeout=WAIT,
            what="gone judged dead",
        )
        url = f"http://127.0.0.1:{t.registries[0].http_port}"
        env = {"TARSCASCADE_REGISTRY": url}
        p = await run_cli("drain", OBJ, f"tcp -h {HOST} -p 1", "--timeout", "20", env=env)
        line = failed(p, 4)
        assert "1 registered node(s) are offline" in line
        assert "gone" in line
        out = ok(
            await run_cli("drain", OBJ, f"tcp -h {HOST} -p 2", "--allow-offline", "--json", env=env)
        )
        assert '"offline":["gone"]' in out.replace(" ", "")
        assert '"complete":true' in out.replace(" ", "")


async def test_the_last_active_endpoint_is_refused_without_force(db_url: str) -> None:
    async with tier(db_url, 1) as t:
        await t.add_node_on("n", 0)
        # the node's own record is written by the registry after it subscribed: wait for
        # it, so the "nothing written" below is about the drain alone (a fresh-clone run
        # saw the registration land between the two reads)
        await t.registered_everywhere(["n"])
        await _endpoints(t, 1, 2)
        admin = t.admin(0)
        assert (await admin.drain(OBJ, HOST, 1, timeout=WAIT)).complete
        before = await asyncio.to_thread(t.core(0).store.load)
        with pytest.raises(ConflictError, match="last active endpoint"):
            await admin.drain(OBJ, HOST, 2, timeout=WAIT)
        after = await asyncio.to_thread(t.core(0).store.load)
        assert after.revision == before.revision  # nothing written
        assert after.endpoints == before.endpoints
        assert _active(t.nodes["n"].catalog, 2)
        res = await admin.drain(OBJ, HOST, 2, timeout=WAIT, force=True)
        assert res.complete
        assert not _active(t.nodes["n"].catalog, 2)
        # an endpoint whose node is dead does not count as active
        await t.core(0).write(
            [
                Put(NodeRecord("ghost", present_state=State.INACTIVE)),
                Put(EndpointRecord(OBJ, HOST, 3, node_name="ghost")),
                Put(EndpointRecord(OBJ, HOST, 4)),
            ]
        )
        with pytest.raises(ConflictError, match="last active endpoint"):
            await admin.drain(OBJ, HOST, 4, timeout=0)


def test_due_sightings_new_nodes_at_once_known_ones_at_the_interval() -> None:
    heard = {"new": 10.0, "fresh": 10.0, "quiet": 3.0, "due": 10.0}
    # (the time the sighting said, when it was written)
    written = {"fresh": (9.5, 9.5), "quiet": (4.0, 4.0), "due": (6.0, 6.0)}
    assert sorted(due_sightings(heard, written, now=10.0, interval=3.0)) == ["due", "new"]
