"""Idle heartbeats (docs/protocol.md, *Idle heartbeats*): when a connected node counts as
alive though silent, when it counts as stale, and what a hub grants in subscribe."""

from __future__ import annotations

import pytest

from tarscascade.cascade.tracker import (
    LATE_FACTOR,
    STALE_AFTER_S,
    AckTracker,
    NodeState,
    is_silent,
    vouched_at,
)
from tarscascade.transport.sockopts import KeepAlive
from tarscascade.wire.idl.cascadef import BAD_REQUEST, OK, SubscribeReq
from tests.unit.cascade.test_coalesce import Rig

BOUND = 11.0


def state(*, connected: bool = True, heard: float = 1000.0, quiet: float = 30.0) -> NodeState:
    return NodeState("n", connected=connected, last_heartbeat=heard, quiet_s=quiet)


def test_a_connection_vouches_for_its_node_as_of_the_keepalive_bound() -> None:
    st = state(heard=1000.0)
    # heard 10 s ago, next heartbeat due much later: alive as of the keepalive's bound
    assert vouched_at(st, 1010.0, BOUND) == 1010.0 - BOUND


def test_a_vouch_never_passes_the_time_the_next_heartbeat_was_due() -> None:
    """A proxy between keeps the connection open for a dead peer: its word counts only
    until the peer's next heartbeat is overdue."""
    st = state(heard=1000.0, quiet=30.0)
    assert vouched_at(st, 2000.0, BOUND) == 1000.0 + 30.0 * LATE_FACTOR


@pytest.mark.parametrize(
    "st", [state(connected=False), state(heard=0.0)], ids=["disconnected", "never heard"]
)
def test_no_vouch_without_a_connection_or_a_first_word(st: NodeState) -> None:
    assert vouched_at(st, 2000.0, BOUND) is None


def test_stale_follows_the_nodes_own_interval() -> None:
    granted = state(heard=1000.0, quiet=30.0)
    assert not is_silent(granted, 1000.0 + 2 * 30.0 - 1)  # one missed long beat: fine
    assert is_silent(granted, 1000.0 + 2 * 30.0 + 1)
    old = state(heard=1000.0, quiet=7.5)  # a node without a grant: 15 s, as before
    assert not is_silent(old, 1000.0 + STALE_AFTER_S - 1)
    assert is_silent(old, 1000.0 + STALE_AFTER_S + 1)
    assert not is_silent(state(heard=0.0), 1e9)  # never heard: not "stale"


def test_a_relays_descendants_are_expected_at_the_relays_pace() -> None:
    """Their times here are the relay's heartbeats."""
    t = AckTracker()
    relay = t.connected("relay", "127.0.0.1:1")
    relay.quiet_s = 30.0
    t.record_descendants("relay", {"leaf": {}}, heartbeat=True)
    leaf = t.get("leaf")
    assert leaf is not None
    assert leaf.quiet_s == 30.0
    forgotten = t.forgotten
    t.record_descendants("relay", {}, heartbeat=True)
    assert t.forgotten == forgotten + 1


def test_the_default_keepalive_finds_a_dead_peer_inside_a_30_s_node_timeout() -> None:
    ka = KeepAlive()
    assert ka.detection_bound == max(ka.idle + ka.interval * ka.count, ka.user_timeout)
    assert ka.detection_bound < 30.0 / 3 + 5  # room for the rounds and a tier's sightings


@pytest.mark.parametrize(
    ("grant", "asked_ms", "granted_ms", "timeout"),
    [
        (30.0, 30_000, 30_000, 3 * 7.5 * 1.25 + 1 + (30 - 7.5) * 1.25),
        (30.0, 10_000, 10_000, 3 * 7.5 * 1.25 + 1 + (10 - 7.5) * 1.25),  # asked less
        (0.0, 30_000, 0, 3 * 7.5 * 1.25 + 1),  # this hub grants nothing
        (30.0, 0, 0, 3 * 7.5 * 1.25 + 1),  # an older node asks nothing
    ],
)
async def test_a_hub_grants_at_most_what_was_asked_and_expires_the_session_accordingly(
    grant: float, asked_ms: int, granted_ms: int, timeout: float
) -> None:
    rig = Rig(idle_heartbeat_grant=grant)
    req = SubscribeReq(nodeName="n", heartbeatMs=7500, idleHeartbeatMs=asked_ms)
    try:
        ret, rsp = rig.hub._subscribe(rig.current(), req)
        assert ret == OK
        assert rsp.idleHeartbeatMs == granted_ms
        assert rig.hub._sessions["n"].heartbeat_timeout == pytest.approx(timeout)
        st = rig.hub.tracker.get("n")
        assert st is not None
        assert st.quiet_s == max(7.5, granted_ms / 1000)
    finally:
        await rig.hub.aclose()


async def test_a_subscribe_asking_an_idle_interval_out_of_range_is_refused() -> None:
    rig = Rig(idle_heartbeat_grant=30.0)
    try:
        for bad in (-1, 3_600_001):
            req = SubscribeReq(nodeName="n", heartbeatMs=7500, idleHeartbeatMs=bad)
            ret, _ = rig.hub._subscribe(rig.current(), req)
            assert ret == BAD_REQUEST
        assert "n" not in rig.hub._sessions
    finally:
        await rig.hub.aclose()
