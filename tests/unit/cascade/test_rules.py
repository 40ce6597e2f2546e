"""The plan table: every row, and the promise behind it (never go back in a lineage)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarscascade.cascade.rules import Plan, Source, guard_holds, plan
from tarscascade.cascade.states import Held
from tarscascade.model import Version
from tarscascade.wire.idl.cascadef import BEHIND, HOLD, RESUME, SNAPSHOT, UP_TO_DATE

E, F = "epoch-e", "epoch-f"


def source(rev: int, digest: int = 7, epoch: str = E, floor: int = 0) -> Source:
    return Source(
        Version(epoch, rev) if epoch else Version("", 0),
        digest,
        lambda v: v.epoch == epoch and floor <= v.revision <= rev,
    )


def held(rev: int, digest: int = 7, epoch: str = E) -> Held:
    return Held(Version(epoch, rev), digest)


ROWS = [
    # (what the upstream holds, what the downstream holds, kwargs, plan)
    (source(0, epoch=""), None, {}, Plan.WAIT),
    (source(0, epoch=""), held(5), {}, Plan.BEHIND),
    (source(5), None, {}, Plan.SNAPSHOT),
    (source(5), Held(Version("", 0), 0), {}, Plan.SNAPSHOT),
    (source(5), held(9, epoch=F), {"stale": True}, Plan.BEHIND),
    (source(5), held(9, epoch=F), {"hold_lineage": True}, Plan.HOLD),
    (source(5), held(9, epoch=F), {}, Plan.SNAPSHOT),
    (source(5), held(5), {}, Plan.UP_TO_DATE),
    (source(5), held(9), {}, Plan.ADOPT),
    (source(9), held(5), {}, Plan.BOOKMARK),
    (source(5), held(9, digest=1), {}, Plan.BEHIND),
    (source(9), held(5, digest=1), {}, Plan.RESUME),
    (source(9, floor=6), held(5, digest=1), {}, Plan.SNAPSHOT),
    (source(9), held(9, digest=1), {}, Plan.SNAPSHOT),
]


@pytest.mark.parametrize(("src", "h", "kw", "expected"), ROWS)
def test_every_row_of_the_table(
    src: Source, h: Held | None, kw: dict[str, bool], expected: Plan
) -> None:
    assert plan(src, h, **kw) is expected


@given(
    up_rev=st.integers(0, 20),
    mine=st.integers(1, 20),
    same_digest=st.booleans(),
    floor=st.integers(0, 20),
    stale=st.booleans(),
)
def test_a_downstream_is_never_sent_back_in_its_lineage(
    up_rev: int, mine: int, same_digest: bool, floor: int, stale: bool
) -> None:
    """Whatever the upstream holds, a downstream of the same lineage that is ahead is
    never planned anything that would replace its data with older data."""
    src = source(up_rev, floor=min(floor, up_rev))
    h = held(mine, digest=7 if same_digest else 8)
    p = plan(src, h, stale=stale)
    if mine > up_rev:
        assert p in (Plan.ADOPT, Plan.BEHIND)
    if p in (Plan.SNAPSHOT, Plan.RESUME, Plan.BOOKMARK):
        assert up_rev >= mine


@given(st.sampled_from(list(Plan)))
def test_protocol_1_downstreams_never_see_new_answers(p: Plan) -> None:
    assert p.wire(1) in (UP_TO_DATE, RESUME, SNAPSHOT)
    assert p.wire(2) in (UP_TO_DATE, RESUME, SNAPSHOT, BEHIND, HOLD)


@pytest.mark.parametrize(
    ("up_count", "held_count", "confirmed", "loss", "holds"),
    [
        (0, 100, "", 0.5, True),  # an empty lineage over a full replica
        (49, 100, "", 0.5, True),
        (50, 100, "", 0.5, False),  # loses exactly half: allowed
        (0, 100, F, 0.5, False),  # the operator confirmed the new lineage
        (0, 0, "", 0.5, False),  # nothing to lose
        (0, -1, "", 0.5, False),  # a protocol 1 downstream says no count
        (0, 100, "", 1.0, False),  # guard off
    ],
)
def test_the_guard(
    up_count: int, held_count: int, confirmed: str, loss: float, holds: bool
) -> None:
    got = guard_holds(F, up_count, held(9), held_count, confirmed_epoch=confirmed, max_loss=loss)
    assert got is holds


def test_the_guard_never_holds_the_same_lineage() -> None:
    assert not guard_holds(E, 0, held(9), 100, confirmed_epoch="", max_loss=0.5)
    assert not guard_holds(F, 0, None, 100, confirmed_epoch="", max_loss=0.5)
