"""ChangeLog: complete for (floor, head], bounded, reset on holes, preloaded from the store."""

from __future__ import annotations

import pytest

from tarscascade.cascade.changelog import ChangeLog
from tarscascade.model import Category, ChangeEvent, Op, Setting, Version


def ev(rev: int) -> ChangeEvent:
    s = Setting(f"k{rev}", "v")
    return ChangeEvent(rev, Category.OBJECTS, Op.PUT, s.key, s)


def V(rev: int, epoch: str = "e") -> Version:
    return Version(epoch, rev)


def test_resumes_from_any_version_it_covers() -> None:
    log = ChangeLog(V(10))
    assert log.append(V(10), V(13), [ev(11), ev(13)])
    assert log.append(V(13), V(20), [ev(20)])
    assert log.version == V(20)
    assert [e.revision for e in log.since(10)] == [11, 13, 20]
    assert [e.revision for e in log.since(12)] == [13, 20]
    assert log.since(20) == []
    assert log.covers(V(10))
    assert log.covers(V(15))
    assert log.covers(V(20))
    assert not log.covers(V(9))
    assert not log.covers(V(21))
    assert not log.covers(V(15, "other"))


@pytest.mark.parametrize(
    ("from_", "to", "events"),
    [
        (V(11), V(12), [ev(12)]),  # does not start at the head: a hole
        (V(10), V(12, "x"), [ev(12)]),  # another epoch
        (V(10), V(12), [ev(12), ev(11)]),  # out of order
        (V(10), V(12), [ev(10)]),  # an event not after from
        (V(10), V(12), [ev(13)]),  # an event after to
    ],
)
def test_a_batch_that_does_not_follow_resets_the_log(
    from_: Version, to: Version, events: list[ChangeEvent]
) -> None:
    log = ChangeLog(V(10))
    assert not log.append(from_, to, events)
    assert log.version == to
    assert len(log) == 0
    assert log.covers(to)
    assert not log.covers(V(10))


def test_a_bookmark_moves_the_head_without_events() -> None:
    log = ChangeLog(V(10))
    assert log.append(V(10), V(15), [])
    assert log.covers(V(12))
    assert log.since(12) == []


def test_it_stays_bounded_and_raises_its_floor() -> None:
    log = ChangeLog(V(0), max_events=100)
    for r in range(1, 1001):
        assert log.append(V(r - 1), V(r), [ev(r)])
        assert len(log) <= 125
    assert log.floor >= 1000 - 125
    assert not log.covers(V(log.floor - 1))
    assert [e.revision for e in log.since(log.floor)] == list(range(log.floor + 1, 1001))


def test_preload_prepends_older_history() -> None:
    log = ChangeLog(V(50))
    log.append(V(50), V(60), [ev(55), ev(60)])
    history = [ev(r) for r in (20, 30, 50, 55)]  # the store's log; 55 is already here
    assert log.preload(history, since=10) == 3
    assert log.floor == 10
    assert [e.revision for e in log.since(10)] == [20, 30, 50, 55, 60]
    assert log.preload(history, since=10) == 0  # nothing older than the floor now
    with pytest.raises(ValueError, match="order"):
        ChangeLog(V(50)).preload([ev(30), ev(20)], since=0)
