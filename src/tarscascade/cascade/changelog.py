"""The upstream's bounded in-memory change log of one incremental category.

It is *complete* for revisions in ``(floor, head]`` of one epoch: every change of the
category in that range is in it. A downstream holding a version in ``[floor, head]``
resumes with the events after its revision (possibly none: a bookmark); anything older
or from another epoch takes a snapshot. Pure and synchronous.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise

from tarscascade.model import ChangeEvent, Version

#: Events kept per category (docs/protocol.md, "Bounds").
DEFAULT_LOG_EVENTS = 100_000


class ChangeLog:
    """Recent events of one category, oldest first, at most about ``max_events``."""

    __slots__ = ("_events", "_revs", "epoch", "floor", "head", "max_events")

    def __init__(self, version: Version, max_events: int = DEFAULT_LOG_EVENTS) -> None:
        if max_events < 1:
            raise ValueError("max_events must be positive")
        self.max_events = max_events
        self._events: list[ChangeEvent] = []
        self._revs: list[int] = []
        self.epoch = version.epoch
        self.floor = self.head = version.revision

    @property
    def version(self) -> Version:
        """The version the log ends at (the category's version at the upstream)."""
        return Version(self.epoch, self.head)

    def __len__(self) -> int:
        return len(self._events)

    def covers(self, version: Version) -> bool:
        """Whether a downstream at ``version`` can be brought to ``head`` from this log."""
        return version.epoch == self.epoch and self.floor <= version.revision <= self.head

    def since(self, revision: int) -> list[ChangeEvent]:
        """The events after ``revision`` (check :meth:`covers` first)."""
        return self._events[bisect_right(self._revs, revision) :]

    def count_since(self, revision: int) -> int:
        """How many events are after ``revision``."""
        return len(self._revs) - bisect_right(self._revs, revision)

    def has_since(self, revision: int) -> bool:
        """Whether any event is after ``revision``."""
        return bool(self._revs) and self._revs[-1] > revision

    def reset(self, version: Version) -> None:
        """Forget everything: the category was replaced wholesale at ``version``."""
        self._events.clear()
        self._revs.clear()
        self.epoch = version.epoch
        self.floor = self.head = version.revision

    def append(self, from_: Version, to: Version, events: Sequence[ChangeEvent]) -> bool:
        """Record the events taking the category from ``from_`` to ``to``.

        Returns False (and resets the log to ``to``) when ``from_`` is not the log's
        head: the log would have a hole, so nobody may resume across it.
        """
        revs = [ev.revision for ev in events]
        ordered = all(a < b for a, b in pairwise(revs))
        in_range = not revs or (from_.revision < revs[0] and revs[-1] <= to.revision)
        if (
            from_ != self.version
            or to.epoch != from_.epoch
            or to.revision < from_.revision
            or not ordered
            or not in_range
        ):
            self.reset(to)
            return False
        self._events.extend(events)
        self._revs.extend(revs)
        self.head = to.revision
        self._trim()
        return True

    def preload(self, events: Sequence[ChangeEvent], since: int) -> int:
        """Prepend older history: ``events`` are *every* change in ``(since, x]``, ``x >= floor``.

        Used by a restarted registry, which rebuilds the log from the store's change log
        so nodes resume with deltas. Returns how many events were added.
        """
        if since >= self.floor:
            return 0
        older = [ev for ev in events if since < ev.revision <= self.floor]
        revs = [ev.revision for ev in older]
        if any(a >= b for a, b in pairwise(revs)):
            raise ValueError("preloaded events are not in revision order")
        self._events[:0] = older
        self._revs[:0] = revs
        self.floor = since
        self._trim()
        return len(older)

    def _trim(self) -> None:
        # Trim in steps of a quarter so appends stay amortised O(1) (a list delete at the
        # front moves the rest); the log briefly holds up to 1.25x max_events.
        excess = len(self._events) - self.max_events
        if excess <= self.max_events // 4:
            return
        self.floor = self._revs[excess - 1]
        del self._events[:excess]
        del self._revs[:excess]

    def __repr__(self) -> str:
        return f"<ChangeLog {self.epoch}:({self.floor}, {self.head}] {len(self._events)} events>"


def compact(events: Sequence[ChangeEvent]) -> list[ChangeEvent]:
    """The last event of every key, in revision order: applied on a replica holding the
    version before the first event, it leaves the same content as all of them (a put
    then a delete is a delete, which a replica without the key takes as a no-op)."""
    if len(events) < 2:
        return list(events)
    last: dict[tuple[str, str], int] = {}
    for i, ev in enumerate(events):
        last[(ev.category, ev.key)] = i
    if len(last) == len(events):
        return list(events)
    return [events[i] for i in sorted(last.values())]
