"""The node liveness rule, with a fake clock (plain numbers)."""

from __future__ import annotations

import pytest

from tarscascade.model import NodeRecord, State
from tarscascade.registry.liveness import Liveness

ALIVE = State.ACTIVE
DEAD = State.INACTIVE


def node(name: str, state: State = ALIVE) -> NodeRecord:
    return NodeRecord(name=name, present_state=state)


@pytest.mark.parametrize(
    ("state", "last_seen", "now", "expected"),
    [
        # TARS CheckNodeThread: heartbeat older than the timeout -> node inactive
        (ALIVE, 100.0, 131.0, DEAD),
        (ALIVE, 100.0, 130.0, None),  # exactly at the timeout: still alive
        (ALIVE, 100.0, 110.0, None),
        # a dead node that heartbeats again comes back (TARS keepAlive sets present_state active)
        (DEAD, 125.0, 130.0, ALIVE),
        (DEAD, 50.0, 130.0, None),  # still silent: stays dead, no event
    ],
)
def test_transition_table(
    state: State, last_seen: float, now: float, expected: State | None
) -> None:
    lv = Liveness(timeout=30)
    lv.heartbeat("n1", last_seen)
    out = lv.transitions([node("n1", state)], now=now, started_at=0)
    if expected is None:
        assert out == []
    else:
        assert [(n.name, n.present_state) for n in out] == [("n1", expected)]


def test_unknown_node_gets_one_timeout_after_registry_start() -> None:
    lv = Liveness(timeout=30)
    nodes = [node("quiet")]
    assert lv.transitions(nodes, now=1010, started_at=1000) == []
    [out] = lv.transitions(nodes, now=1031, started_at=1000)
    assert out.present_state == DEAD


def test_heartbeats_only_move_forward_and_merge_from_other_registries() -> None:
    lv = Liveness(timeout=10)
    lv.heartbeat("n", 50)
    lv.heartbeat("n", 40)  # late delivery of an older heartbeat
    assert lv.last_seen["n"] == 50
    lv.merge({"n": 55, "m": 20})
    assert lv.last_seen == {"n": 55, "m": 20}
    assert lv.is_alive("n", 60)
    assert not lv.is_alive("m", 60)
    lv.forget("m")
    assert not lv.is_alive("m", 21)
