"""The fleet log's decisions: one event per transition, none for a node behind for a
moment (every write makes every node briefly behind), none repeated."""

from __future__ import annotations

from typing import Any

from tarscascade.cascade import NodeState
from tarscascade.model import Category
from tarscascade.registry.fleet_log import BEHIND_AFTER_S, STALE_AFTER_S, FleetWatcher


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
