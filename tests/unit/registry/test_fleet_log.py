"""The fleet log's decisions: one event per transition, none for a node behind for a
moment (every write makes every node briefly behind), none repeated."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

from tarscascade.cascade import CascadeHub, NodeState
from tarscascade.cascade.states import Held
from tarscascade.cascade.tracker import STALE_AFTER_S
from tarscascade.catalog import Catalog
from tarscascade.model import Category, Version
from tarscascade.registry.fleet_log import BEHIND_AFTER_S, FleetWatcher
from tarscascade.testing import eventually


class Epoch:
    value = "e1"

    def __call__(self) -> str:
        return self.value


def node(
    name: str, *, connected: bool = True, lag: int = 0, heard: float = 0.0, via: str = ""
) -> NodeState:
    return NodeState(
        name,
        address="10.0.0.1:19386",
        connected=connected,
        via=via,
        lag={Category.OBJECTS: lag, Category.NODES: 0},
        last_heartbeat=heard,
    )


def events(w: FleetWatcher, now: float, *states: NodeState) -> list[tuple[str, Any]]:
    return [(e.event, e.fields.get("node")) for e in w.check({s.name: s for s in states}, now)]


def test_joined_behind_current_stale_left_once_each() -> None:
    epoch = Epoch()
    w = FleetWatcher(hub=None, epoch=epoch)  # type: ignore[arg-type]
    t = 1000.0
    assert events(w, t, node("a", heard=t)) == [("node_joined", "a")]
    assert events(w, t + 1, node("a", heard=t + 1)) == []
    # behind for a moment after a write: nothing
    assert events(w, t + 2, node("a", lag=3, heard=t + 2)) == []
    assert events(w, t + 2.5, node("a", heard=t + 2.5)) == []
    # behind for longer than BEHIND_AFTER_S: one line, not one per check
    assert events(w, t + 3, node("a", lag=3, heard=t + 3)) == []
    late = t + 3 + BEHIND_AFTER_S
    assert events(w, late, node("a", lag=4, heard=late)) == [("node_behind", "a")]
    assert events(w, late + 1, node("a", lag=5, heard=late + 1)) == []
    assert events(w, late + 2, node("a", heard=late + 2)) == [("node_current", "a")]
    silent = late + 3 + STALE_AFTER_S
    assert events(w, silent, node("a", heard=late + 2)) == [("node_stale", "a")]
    assert events(w, silent + 1, node("a", heard=late + 2)) == []
    assert events(w, silent + 2, node("a", connected=False, heard=late + 2)) == [("node_left", "a")]
    assert events(w, silent + 3, node("a", connected=False, heard=late + 2)) == []
    assert events(w, silent + 4, node("a", heard=silent + 4)) == [("node_joined", "a")]


def test_nodes_behind_a_relay_and_forgotten_ones_and_the_epoch() -> None:
    epoch = Epoch()
    w = FleetWatcher(hub=None, epoch=epoch)  # type: ignore[arg-type]
    out = w.check({"r": node("r", heard=1), "leaf": node("leaf", via="r", heard=1)}, 1)
    joined = [e for e in out if e.event == "node_joined"]
    assert {e.fields["node"] for e in joined} == {"r", "leaf"}
    assert next(e for e in joined if e.fields["node"] == "leaf").message == "node leaf joined via r"
    epoch.value = "e2"
    out = w.check({"r": node("r", heard=2)}, 2)  # the relay stopped reporting leaf
    assert [(e.event, e.fields.get("node")) for e in out] == [
        ("epoch_changed", None),
        ("node_left", "leaf"),
    ]
    assert out[0].fields == {"old_epoch": "e1", "epoch": "e2"}


def test_a_node_following_a_stream_of_writes_is_not_behind() -> None:
    """Under steady writes a node is a revision behind at most samples while it applies
    every one within milliseconds: that is not 'behind' (a tier benchmark logged it
    dozens of times a minute). A node that stops applying is."""
    from tarscascade.model import Version

    w = FleetWatcher(hub=None, epoch=Epoch())  # type: ignore[arg-type]
    t = 1000.0

    def at(held: int, lag: int, now: float) -> NodeState:
        st = node("a", lag=lag, heard=now)
        st.held = {Category.OBJECTS: Version("e1", held)}
        return st

    assert events(w, t, at(0, 0, t)) == [("node_joined", "a")]
    for i in range(1, 30):  # 20 writes/s, sampled every second: always 1 behind, moving
        assert events(w, t + i, at(20 * i, 1, t + i)) == [], i
    # it stops applying: the revision it lacked 5 s ago is still not held
    stuck = t + 30
    for i in range(int(BEHIND_AFTER_S)):
        assert events(w, stuck + i, at(600, 1 + 20 * i, stuck + i)) == []
    late = stuck + BEHIND_AFTER_S
    assert events(w, late, at(600, 120, late)) == [("node_behind", "a")]


class SlowHub:
    """A hub whose view takes ``cost`` seconds of CPU (a large fleet), counting rounds."""

    def __init__(self, cost: float) -> None:
        self.cost = cost
        self.rounds: list[float] = []

    def fleet_view(self) -> dict[str, NodeState]:
        self.rounds.append(time.perf_counter())
        end = time.perf_counter() + self.cost
        while time.perf_counter() < end:
            pass
        return {}


async def test_rounds_over_a_large_fleet_keep_to_their_budget() -> None:
    hub = SlowHub(cost=0.02)
    w = FleetWatcher(hub=hub, epoch=Epoch())  # type: ignore[arg-type]
    task = asyncio.create_task(w.run(interval=0.001, budget=0.25))
    try:
        await eventually(lambda: len(hub.rounds) >= 4, timeout=10, what="four rounds")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    gaps = [b - a for a, b in itertools.pairwise(hub.rounds)]
    # 20 ms of work in at most a quarter of the time: rounds at least 80 ms apart, not 1 ms
    assert min(gaps) >= 0.08


async def test_the_fleet_view_reads_like_the_node_states() -> None:
    cat = Catalog()
    for c in Category:
        cat.replace_category(c, [], Version("e", 9))
    hub = CascadeHub(cat, authenticate=lambda name, token: True)
    hub.tracker.connected("direct", "10.0.0.1:1")
    hub.tracker.record("direct", {Category.OBJECTS: Held(Version("e", 7), 0)}, heartbeat=True)
    hub.tracker.connected("old", "10.0.0.2:1")
    hub.tracker.record("old", {Category.OBJECTS: Held(Version("x", 50), 0)}, heartbeat=True)
    hub.tracker.disconnected("old")
    # current in every category (the view's short cut), and one a relay reports
    everything = {c: Held(Version("e", 9), 0) for c in Category}
    hub.tracker.connected("current", "10.0.0.3:1").quiet_s = 30.0
    hub.tracker.record("current", everything, heartbeat=True)
    hub.tracker.connected("relay", "10.0.0.4:1")
    hub.tracker.record_descendants("relay", {"leaf": everything}, heartbeat=True)
    states, view = hub.node_states(), hub.fleet_view()
    assert set(view) == set(states) == {"direct", "old", "current", "relay", "leaf"}
    for name, st in states.items():
        v = view[name]
        assert (v.connected, v.via, v.address, v.held, v.lag) == (
            st.connected,
            st.via,
            st.address,
            st.held,
            st.lag,
        )
        assert (v.last_heartbeat, v.last_ack, v.quiet_s) == (
            st.last_heartbeat,
            st.last_ack,
            st.quiet_s,
        )
    assert set(view["current"].lag.values()) == {0}
    assert view["direct"].lag[Category.OBJECTS] == 2
    assert view["old"].lag[Category.OBJECTS] is None  # another epoch
    await hub.aclose()
