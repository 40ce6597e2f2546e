"""The mass-change guard: a real "recover protect" (db_tars.md §2.6, §6.3 item 4); pure.

TARS's recoverProtect compares the share of inactive tarsnodes with a rate and swaps in
an empty load unchecked. Here the question is asked of the change itself: a diff that
would empty the catalog, delete more than a share of its endpoints, or turn more than a
share of its active endpoints inactive is *held*: the catalog keeps serving what it has,
an alarm is raised, and the change applies only once an operator confirms it (or, when
configured, after it was seen on that many consecutive full loads).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tarscascade.dbtars.mapping import is_active
from tarscascade.model import EndpointRecord


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    #: hold a diff deleting more than this share of the catalog's endpoints
    max_delete_ratio: float = 0.5
    #: hold a diff turning more than this share of the active endpoints inactive (or gone)
    max_deactivate_ratio: float = 0.5
    #: diffs smaller than this are never held (a small installation stops half its servers)
    min_changes: int = 10
    #: apply a held change after this many consecutive full loads showed it; 0 = only on
    #: an operator's confirmation
    confirm_after_loads: int = 0
    #: False turns the guard off (tests that replace the whole database on purpose)
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Impact:
    """What a diff would do to the objects category."""

    current: int  # endpoints held now
    current_active: int
    target: int  # endpoints after the diff
    deletes: int
    deactivations: int  # active now, inactive or gone after

    def describe(self) -> str:
        return (
            f"{self.deletes} of {self.current} endpoints deleted, {self.deactivations} of "
            f"{self.current_active} active endpoints turned inactive, {self.target} left"
        )


def impact(
    current: int,
    current_active: int,
    target: int,
    changes: Iterable[tuple[EndpointRecord | None, EndpointRecord | None]],
) -> Impact:
    """Count a diff given as ``(have, want)`` pairs per changed key."""
    deletes = deactivations = 0
    for have, want in changes:
        if have is None:
            continue
        if want is None:
            deletes += 1
        if is_active(have) and (want is None or not is_active(want)):
            deactivations += 1
    return Impact(current, current_active, target, deletes, deactivations)


def hold_reason(policy: GuardPolicy, im: Impact) -> str | None:
    """Why the diff must wait for confirmation, or None when it may apply."""
    if not policy.enabled:
        return None
    if im.current > 0 and im.target == 0:
        return f"the load has no endpoints ({im.describe()})"
    if im.deletes >= policy.min_changes and im.deletes > policy.max_delete_ratio * im.current:
        return f"mass delete: {im.describe()}"
    if (
        im.deactivations >= policy.min_changes
        and im.deactivations > policy.max_deactivate_ratio * im.current_active
    ):
        return f"mass deactivation: {im.describe()}"
    return None
