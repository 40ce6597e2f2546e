"""Has the replica synced? The subscribe plans and applied pushes, kept track of. Pure.

A category is done once its planned snapshot was applied, or its version reached the
one a ``RESUME`` plan named, or the plan said ``UP_TO_DATE``. A category the upstream
is ``BEHIND`` in (or ``HOLD`` s back) is not done until a later push or heartbeat plan
says it is. The replica counts as synced once every category is done after the first
plan; it stays synced afterwards (being cut off is what ``stale`` says).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tarscascade.cascade.states import is_at_least
from tarscascade.model import Category, Version
from tarscascade.wire.idl.cascadef import (
    BEHIND,
    HOLD,
    RESUME,
    SNAPSHOT,
    UP_TO_DATE,
    CategoryPlanF,
)


class SyncProgress:
    def __init__(self, held: Callable[[Category], Version]) -> None:
        self._held = held
        self._awaiting_snapshot: set[Category] = set()
        self._targets: dict[Category, Version] = {}
        #: categories the upstream is behind in (or holds back): not done yet
        self._waiting: set[Category] = set()
        self._planned = False  # no plan yet: nothing can be "synced"
        self._snapshots: dict[Category, int] = dict.fromkeys(Category, 0)
        self.synced = False

    def mark(self) -> dict[Category, int]:
        """Taken when a subscribe is sent; pass it back with the plan it gets."""
        return dict(self._snapshots)

    def plan(self, plan: Sequence[CategoryPlanF], mark: dict[Category, int]) -> bool:
        """Take a subscribe plan; returns True when this makes the replica synced."""
        # Pushes that follow the reply in the same read are applied before the plan is
        # taken (the reply only wakes the caller up), so a snapshot may already be in.
        self._awaiting_snapshot.clear()
        self._targets.clear()
        self._waiting.clear()
        for p in plan:
            try:
                cat = Category(p.category)
            except ValueError:
                continue
            if p.action in (BEHIND, HOLD):
                self._waiting.add(cat)
            elif p.action == SNAPSHOT:
                if self._snapshots[cat] == mark[cat]:
                    self._awaiting_snapshot.add(cat)
            elif p.action == RESUME:
                self._targets[cat] = Version(p.version.epoch, p.version.revision)
        self._planned = True
        return self._check()

    def replanned(self, plan: Sequence[CategoryPlanF]) -> bool:
        """A heartbeat's plans: a category the upstream caught up in is done."""
        for p in plan:
            if p.action == UP_TO_DATE and p.category in self._waiting:
                self._waiting.discard(Category(p.category))
        return self._check()

    def applied(self, cat: Category, *, snapshot: bool) -> bool:
        """A push of ``cat`` was applied; returns True when this makes the replica synced."""
        self._waiting.discard(cat)
        if snapshot:
            self._snapshots[cat] += 1
            self._awaiting_snapshot.discard(cat)
            self._targets.pop(cat, None)
        else:
            target = self._targets.get(cat)
            if target is not None and is_at_least(self._held(cat), target):
                del self._targets[cat]
        return self._check()

    def _check(self) -> bool:
        if self.synced or not self._planned:
            return False
        for cat in Category:
            if cat in self._awaiting_snapshot or cat in self._waiting:
                return False
            target = self._targets.get(cat)
            if target is not None and not (target.epoch and is_at_least(self._held(cat), target)):
                return False  # (a target without epoch: the upstream had nothing yet)
        self.synced = True
        return True
