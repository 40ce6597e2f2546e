"""What an upstream does for a downstream that holds X: the plan table, in one place. Pure.

Every decision of the sync protocol about one category starts here: the subscribe
answer, a heartbeat's re-plan, a worker's catch-up. The table (docs/protocol.md,
"How the upstream chooses") in order, first match wins:

=============================  ==================================  ==============
the upstream holds             the downstream holds                plan
=============================  ==================================  ==============
nothing                        nothing                             WAIT
nothing                        something                           BEHIND
something                      nothing                             SNAPSHOT
another lineage, but is stale  another lineage                     BEHIND
another lineage (epoch)        a lineage the guard protects        HOLD
another lineage (epoch)        anything else                       SNAPSHOT
same version, same digest      -                                   UP_TO_DATE
older version, same digest     (it is ahead, content equal)        ADOPT
newer version, same digest     (a renumbered category)             BOOKMARK
older version, other digest    (it is ahead: never go back)        BEHIND
newer version the log covers   -                                   RESUME
anything else                  -                                   SNAPSHOT
=============================  ==================================  ==============

Without comparable digests (a protocol 3 downstream under another digest key, at its
first subscribe after an upgrade) the same table is read by versions alone: same
version is UP_TO_DATE, an older one the log covers RESUME, a newer one BEHIND, and what
would need a digest proof (ADOPT, BOOKMARK) is a SNAPSHOT.

Lineages (epochs) are not ordered, so a stale upstream (a relay cut off from its own
source, or serving its disk copy) never replaces a downstream's lineage with its own.
"Never go back" is client-go's "not older than" rule: a downstream never takes a
snapshot or a delta that ends below what it holds in the same lineage. Revisions are
the store's one global counter, so within a lineage a category's content at revision r
is the same wherever it is held, whichever registry or relay numbered it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from tarscascade.cascade.states import Held
from tarscascade.model import Category, Version
from tarscascade.wire.idl.cascadef import (
    BEHIND,
    HOLD,
    OLDEST_PROTOCOL,
    RESUME,
    SNAPSHOT,
    UP_TO_DATE,
)

#: The mass-change guard's default: a new lineage that would take away more than this
#: share of a downstream's endpoints is held until an operator confirms it.
DEFAULT_GUARD_MAX_LOSS = 0.5
#: an idle downstream's longest heartbeat interval where its upstream keeps it alive on
#: its connection (``HubOptions.idle_heartbeat_grant``, ``SubscribeRsp.idleHeartbeatMs``):
#: 1,000 idle nodes send ~33 heartbeats a second, not ~133 (issue 17)
DEFAULT_IDLE_HEARTBEAT = 30.0


class Plan(Enum):
    UP_TO_DATE = "up to date"
    #: the downstream is ahead with equal content: take its version as what it was sent
    ADOPT = "adopt"
    #: equal content at an older version number: an empty delta moves the version
    BOOKMARK = "bookmark"
    #: the events after the downstream's version, from the change log
    RESUME = "resume"
    SNAPSHOT = "snapshot"
    #: the upstream is older than the downstream: it keeps its own, the upstream waits
    #: until it catches up (or the downstream finds a newer upstream)
    BEHIND = "behind"
    #: neither side has anything yet: data follows when the upstream has some
    WAIT = "wait"
    #: a new lineage the guard holds back: the downstream keeps its old one
    HOLD = "hold"

    def wire(self, protocol: int) -> int:
        """The ``CategoryPlanF.action`` for a downstream speaking ``protocol``."""
        if protocol <= OLDEST_PROTOCOL and self in (Plan.BEHIND, Plan.HOLD):
            return RESUME  # protocol 1 knows no such answer: "keep what you hold"
        return _WIRE[self]


_WIRE = {
    Plan.UP_TO_DATE: UP_TO_DATE,
    Plan.ADOPT: UP_TO_DATE,
    Plan.BOOKMARK: RESUME,
    Plan.RESUME: RESUME,
    Plan.SNAPSHOT: SNAPSHOT,
    Plan.BEHIND: BEHIND,
    Plan.WAIT: RESUME,
    Plan.HOLD: HOLD,
}

#: Plans after which the worker has something to send.
NEEDS_WORK = frozenset({Plan.BOOKMARK, Plan.RESUME, Plan.SNAPSHOT})


@dataclass(frozen=True, slots=True)
class Source:
    """What the upstream holds of one category, as the rules need it (pure reads)."""

    version: Version
    #: None: no digest the downstream's can be compared with
    digest: int | None
    covers: Callable[[Version], bool]


def plan(
    source: Source, held: Held | None, *, hold_lineage: bool = False, stale: bool = False
) -> Plan:
    """The plan for a downstream holding ``held`` (None: nothing) of one category.

    ``hold_lineage``: the guard holds back this upstream's lineage from this downstream
    (see :func:`guard_holds`); ``stale``: the upstream itself is not current.
    """
    up = source.version
    has = held is not None and bool(held.version.epoch)
    if not up.epoch:
        return Plan.BEHIND if has else Plan.WAIT
    if held is None or not has:
        return Plan.SNAPSHOT
    mine = held.version
    if mine.epoch != up.epoch:
        if stale:
            return Plan.BEHIND
        return Plan.HOLD if hold_lineage else Plan.SNAPSHOT
    if held.digest is None or source.digest is None:
        if mine.revision == up.revision:
            return Plan.UP_TO_DATE  # versions alone: no digest to say otherwise
    elif held.digest == source.digest:
        if mine.revision == up.revision:
            return Plan.UP_TO_DATE
        return Plan.ADOPT if mine.revision > up.revision else Plan.BOOKMARK
    if mine.revision > up.revision:
        return Plan.BEHIND
    if mine.revision < up.revision and source.covers(mine):
        return Plan.RESUME
    return Plan.SNAPSHOT


def guard_holds(
    upstream_epoch: str,
    upstream_count: int,
    held: Held | None,
    held_count: int,
    *,
    confirmed_epoch: str,
    max_loss: float,
) -> bool:
    """Whether a new lineage must be held back from a downstream (the mass-change guard).

    It is, when the downstream holds another lineage with endpoints and the upstream's
    would take away more than ``max_loss`` of them, unless the upstream's lineage was
    confirmed (an operator said the wipe is intended). ``held_count`` < 0: unknown (a
    protocol 1 downstream) — never held. ``max_loss`` >= 1 turns the guard off.
    """
    if held is None or not held.version.epoch or not upstream_epoch:
        return False
    if held.version.epoch == upstream_epoch or upstream_epoch == confirmed_epoch:
        return False
    if held_count <= 0 or max_loss >= 1.0:
        return False
    return upstream_count < held_count * (1.0 - max_loss)


#: The category whose size the guard compares: endpoints.
GUARDED = Category.OBJECTS
