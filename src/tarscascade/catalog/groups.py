"""IDC groups: which group a host or caller belongs to, and the group priority list.

Faithful to TarsFramework ``RegistryServer/DbHandle.cpp``:

* ``load2GroupMap`` reads ``t_server_group_rule ORDER BY group_id`` into one map from
  every ``allow_ip_rule`` entry (an exact IP or ``a.b.c.*``) to its group id, so on a
  duplicated entry the rule with the higher group id wins; ``group_name`` maps to the
  group id the same way. ``denny_ip_rule`` and ``ip_order`` are loaded but unused.
* ``getGroupId(ip)``: the exact entry, else the ``a.b.c.*`` entry, else -1.
* ``loadGroupPriority`` reads ``t_group_priority ORDER BY list_order`` and keeps each
  row's group list as a set (separators ``|,;`` were split by the store already).

Newer TarsFramework (``ObjectsCacheManager::getGroupId``) instead walks the rules in
order with ``allow_denny``/``denny_allow`` glob matching; we follow the documented
DbHandle behaviour (tars-protocol.md §6.4). Everything is precomputed into dicts so a
lookup is O(1): a group change rebuilds the whole index (groups are a small category).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tarscascade.model import GroupPriority, GroupRule

NO_GROUP = -1

# Callers are memoised (a QueryF caller is usually one of a few thousand hosts), but
# never beyond this many distinct strings: a hostile caller cannot grow it unboundedly.
_MEMO_LIMIT = 65_536


@dataclass(frozen=True, slots=True)
class PriorityEntry:
    """One ``t_group_priority`` row as the selection rules use it."""

    id: int
    groups: frozenset[int]
    station: str


def star_key(ip: str) -> str | None:
    """``a.b.c.*`` for a dotted IPv4 string, as ``Ip2StarStr(stringIpToInt(ip))`` gives.

    TARS parses each part with ``strto<unsigned>`` and keeps one byte of it, so
    ``010.1.1.5`` becomes ``10.1.1.*``. For anything that is not four decimal parts
    TARS computes a meaningless key (``0.0.0.*`` for a host name); we return None,
    which differs only for a rule that lists ``0.0.0.*``.
    """
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() for p in parts):
        return None
    return f"{int(parts[0]) & 255}.{int(parts[1]) & 255}.{int(parts[2]) & 255}.*"


class GroupIndex:
    """The IDC group rules and priorities, precomputed for O(1) lookups."""

    __slots__ = ("_by_ip", "_by_name", "_memo", "_stations", "priorities")

    def __init__(self, rules: Iterable[GroupRule], priorities: Iterable[GroupPriority]) -> None:
        by_ip: dict[str, int] = {}
        by_name: dict[str, int] = {}
        # ORDER BY group_id, later rows overwrite: the highest group id wins a duplicate.
        for rule in sorted(rules, key=lambda r: r.group_id):
            for pattern in rule.allow_ip_rule:
                if pattern:
                    by_ip[pattern] = rule.group_id
            by_name[rule.group_name] = rule.group_id
        self._by_ip = by_ip
        self._by_name = by_name
        # ORDER BY list_order; the row id breaks ties so every replica walks the same order.
        ordered = sorted(priorities, key=lambda p: (p.list_order, p.id))
        self.priorities: tuple[PriorityEntry, ...] = tuple(
            PriorityEntry(p.id, frozenset(p.group_list), p.station) for p in ordered
        )
        stations: dict[str, frozenset[int]] = {}
        for entry in self.priorities:
            # findObjectByIdInSameStation takes the first row (in list order) with the station.
            stations.setdefault(entry.station, entry.groups)
        self._stations = stations
        self._memo: dict[str, int] = {}

    def group_of(self, ip: str) -> int:
        """``getGroupId``: the group of a host or caller identity, -1 when none matches."""
        memo = self._memo
        group = memo.get(ip)
        if group is not None:
            return group
        group = self._by_ip.get(ip)
        if group is None:
            star = star_key(ip)
            group = self._by_ip.get(star, NO_GROUP) if star is not None else NO_GROUP
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[ip] = group
        return group

    def group_by_name(self, name: str) -> int:
        """``getGroupIdByName``: the group id of an ``ip_group_name``, -1 when unknown."""
        return self._by_name.get(name, NO_GROUP)

    def station_groups(self, station: str) -> frozenset[int] | None:
        """The group list of the first priority row with this station, None if there is none."""
        return self._stations.get(station)

    @property
    def is_empty(self) -> bool:
        return not self._by_ip and not self._by_name and not self.priorities

    def __repr__(self) -> str:
        return (
            f"<GroupIndex {len(self._by_name)} groups, {len(self._by_ip)} ip patterns,"
            f" {len(self.priorities)} priorities>"
        )


EMPTY_GROUPS = GroupIndex((), ())
