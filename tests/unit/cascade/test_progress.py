"""SyncProgress: when a replica counts as synced, whatever order plan and pushes come in."""

from __future__ import annotations

from tarscascade.cascade.progress import SyncProgress
from tarscascade.model import Category, Version
from tarscascade.wire.idl.cascadef import RESUME, SNAPSHOT, UP_TO_DATE, CategoryPlanF, VersionF


def plan(actions: dict[Category, int], rev: int = 5, epoch: str = "e") -> list[CategoryPlanF]:
    v = VersionF(epoch=epoch, revision=rev)
    return [CategoryPlanF(str(c), actions.get(c, UP_TO_DATE), v) for c in Category]


def test_nothing_is_synced_before_a_plan() -> None:
    held = dict.fromkeys(Category, Version("e", 5))
    p = SyncProgress(held.__getitem__)
    assert not p.applied(Category.SETTINGS, snapshot=True)
    assert p.plan(plan({}), p.mark())  # then everything up to date: synced
    assert p.synced


def test_snapshots_and_resumes_complete_the_sync() -> None:
    held = dict.fromkeys(Category, Version("e", 1))
    p = SyncProgress(held.__getitem__)
    assert not p.plan(plan({Category.OBJECTS: SNAPSHOT, Category.NODES: RESUME}), p.mark())
    assert not p.applied(Category.OBJECTS, snapshot=True)
    held[Category.NODES] = Version("e", 4)
    assert not p.applied(Category.NODES, snapshot=False)  # not yet at the planned 5
    held[Category.NODES] = Version("e", 5)
    assert p.applied(Category.NODES, snapshot=False)
    assert not p.applied(Category.NODES, snapshot=False)  # reported once


def test_a_snapshot_applied_before_its_plan_was_read_counts() -> None:
    held = dict.fromkeys(Category, Version("e", 5))
    p = SyncProgress(held.__getitem__)
    mark = p.mark()  # subscribe sent
    p.applied(Category.OBJECTS, snapshot=True)  # pushed right behind the reply
    assert p.plan(plan({Category.OBJECTS: SNAPSHOT}), mark)


def test_an_upstream_with_nothing_does_not_make_a_replica_synced() -> None:
    held = dict.fromkeys(Category, Version("", 0))
    p = SyncProgress(held.__getitem__)
    assert not p.plan(plan(dict.fromkeys(Category, RESUME), rev=0, epoch=""), p.mark())
    held[Category.OBJECTS] = Version("e", 3)
    assert not p.applied(Category.OBJECTS, snapshot=False)
