"""The registry's side of idle heartbeats: when it grants them, and that a vouched
sighting (older than its write) is still shared with the tier."""

from __future__ import annotations

import pytest

from tarscascade.registry.liveness import idle_grant
from tarscascade.registry.presence import due_sightings


@pytest.mark.parametrize(
    ("idle", "timeout", "bound", "lag", "granted"),
    [
        (30.0, 30.0, 11.0, 4.0, 30.0),  # one registry: the defaults
        (30.0, 30.0, 11.0, 15.0, 30.0),  # a tier: sightings every 10 s, a 1 s flush
        (30.0, 30.0, 16.0, 15.0, 0.0),  # a slower keepalive: the word comes too late
        (30.0, 10.0, 11.0, 4.0, 0.0),  # a short node timeout: heartbeats must do
        (30.0, 0.0, 11.0, 4.0, 30.0),  # liveness off: nothing to break
        (0.0, 30.0, 11.0, 4.0, 0.0),  # turned off
    ],
)
def test_idle_heartbeats_are_granted_only_where_a_connections_word_keeps_nodes_alive(
    idle: float, timeout: float, bound: float, lag: float, granted: float
) -> None:
    assert idle_grant(idle, timeout, bound, lag) == granted


def test_a_vouched_sighting_older_than_its_write_is_written_again_after_the_interval() -> None:
    """A vouch says "alive 11 s ago": compared with the time of the last write, as
    before, it would never count as newer, and the tier's judge would let the node die."""
    interval = 10.0
    written = {"n": (100.0 - 11.0, 100.0)}  # said 89, written at 100
    assert due_sightings({"n": 95.0 - 11.0 + 10.0}, written, 105.0, interval) == []  # too soon
    assert due_sightings({"n": 111.0 - 11.0}, written, 111.0, interval) == ["n"]  # newer, due
    assert due_sightings({"n": 89.0}, written, 200.0, interval) == []  # nothing newer heard
    assert due_sightings({"m": 1.0}, written, 200.0, interval) == ["m"]  # never written
