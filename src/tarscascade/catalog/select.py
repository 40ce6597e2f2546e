"""The QueryF selection rules: which endpoints an answer carries (tars-protocol.md §6.4-6.5).

Pure functions over an :class:`ObjectView` (``None`` for an unknown object id) that
return ``(ret, active, inactive)`` like the TARS out-parameters. They follow TarsFramework
``ObjectsCacheManager``/``DbHandle`` step by step; the caller identity is resolved to a
group id by the caller (:meth:`GroupIndex.group_of`) so the encoded-response cache can
key answers by group rather than by caller.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tarscascade.catalog.groups import NO_GROUP, GroupIndex
from tarscascade.catalog.view import SET_WILDCARD, ObjectView, SetId, SetMember, parse_query_set
from tarscascade.wire.idl.endpointf import EndpointF

Answer = tuple[int, Sequence[EndpointF], Sequence[EndpointF]]

NOT_FOUND = -1
_EMPTY: tuple[EndpointF, ...] = ()
_EMPTY_OK: Answer = (0, _EMPTY, _EMPTY)
_FAILED: Answer = (NOT_FOUND, _EMPTY, _EMPTY)


def find_object_by_id(view: ObjectView | None) -> Sequence[EndpointF]:
    """``findObjectById``: the active endpoints, no grouping; unknown id → empty."""
    return view.active if view is not None else _EMPTY


def find_4any(view: ObjectView | None) -> Answer:
    """``findObjectById4Any``: every active and inactive endpoint; unknown id → 0 and empty."""
    if view is None:
        return _EMPTY_OK
    return 0, view.active, view.inactive


def find_in_same_group(view: ObjectView | None, groups: GroupIndex, caller_group: int) -> Answer:
    """``findObjectByIdInGroupPriority`` (behind 4All and InSameGroup), §6.4."""
    if caller_group == NO_GROUP or view is None:  # step 1: an ungrouped caller gets 4Any
        return find_4any(view)
    # Step 2: endpoints of servers that enabled grouping and sit in the caller's group.
    active = _by_work_group(view.active, caller_group)
    inactive = _by_work_group(view.inactive, caller_group)
    if not active:
        # Step 3: the priority rows containing the caller's group, in list order; a row
        # contributes every endpoint whose work group is in its list. Each row replaces
        # the previous answer, so the inactive list is that of the last row walked.
        for entry in groups.priorities:
            if caller_group not in entry.groups:
                continue
            active = _in_work_groups(view.active, entry.groups)
            inactive = _in_work_groups(view.inactive, entry.groups)
            if active:
                break
    if not active:  # step 4: servers that did not enable grouping (groupworkid -1)
        active = _by_work_group(view.active, NO_GROUP)
        inactive = _by_work_group(view.inactive, NO_GROUP)
    if not active:  # step 5: everything (at this point nearly every server is down)
        return 0, view.active, view.inactive
    return 0, active, inactive


def find_in_same_station(view: ObjectView | None, groups: GroupIndex, station: str) -> Answer:
    """``findObjectByIdInSameStation``: endpoints whose *real* group is in the station's list."""
    station_groups = groups.station_groups(station)
    if station_groups is None:  # checked before the object: unknown station → -1
        return _FAILED
    if view is None:
        return _EMPTY_OK
    real_active = [ep for ep in view.active if ep.grouprealid in station_groups]
    real_inactive = [ep for ep in view.inactive if ep.grouprealid in station_groups]
    return 0, real_active, real_inactive


def find_in_same_set(
    view: ObjectView | None, groups: GroupIndex, set_id: str, caller_group: int
) -> Answer:
    """``findObjectByIdInSameSet`` (§6.5): -1 on a malformed set id or no member."""
    wanted = parse_query_set(set_id)
    if wanted is None:
        return _FAILED
    members = set_members(view, wanted)
    if members is None:  # no set-enabled endpoint with this set name: IDC group logic
        return find_in_same_group(view, groups, caller_group)
    return select_set_members(members, wanted)


def set_members(view: ObjectView | None, wanted: SetId) -> Sequence[SetMember] | None:
    """The object's members of the wanted set *name*, None when the set rule does not apply."""
    if view is None:
        return None
    return view.sets.get(wanted.name)


def select_set_members(members: Sequence[SetMember], wanted: SetId) -> Answer:
    """Pick from the members of one set name (the set name matched, so no IDC fallback)."""
    if wanted.group == SET_WILDCARD:
        # Every group of the area, the wildcard group included.
        area = wanted.set_area
        chosen = [m for m in members if m.set_area == area]
    else:
        # The exact group; if it has no member at all (dead ones count), the area's
        # wildcard group name.area.*; never other groups, never non-set servers.
        exact = str(wanted)
        chosen = [m for m in members if m.set_id == exact]
        if not chosen:
            wildcard = f"{wanted.set_area}.{SET_WILDCARD}"
            chosen = [m for m in members if m.set_id == wildcard]
    if not chosen:
        return _FAILED
    return (
        0,
        [m.endpoint for m in chosen if m.active],
        [m.endpoint for m in chosen if not m.active],
    )


def _by_work_group(eps: Sequence[EndpointF], group: int) -> list[EndpointF]:
    return [ep for ep in eps if ep.groupworkid == group]


def _in_work_groups(eps: Sequence[EndpointF], group_ids: Collection[int]) -> list[EndpointF]:
    return [ep for ep in eps if ep.groupworkid in group_ids]
