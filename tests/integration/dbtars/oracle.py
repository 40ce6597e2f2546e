"""TARS's answers from db_tars rows, written from db_tars.md §2.2 and §2.5 alone.

Independent of tarscascade's catalog: it builds the open-source registry's caches
(ObjectItem active/inactive lists in row order, the set division cache, the IDC group
maps) straight from the rows and answers the six QueryF methods as QueryImp/DbHandle
do. Only the endpoint-string parser is shared (it is TC_Endpoint::parse's rules).

:func:`normalize` then applies tarscascade's three documented differences, so the
comparison is exact for everything else: copies of one (host, port) are collapsed (the
active copy wins), setId is '' for an invalid set, and t_registry_info rows carry no
node name (TARS puts tars_version there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tarscascade.errors import EndpointSyntaxError
from tarscascade.wire.endpoint import parse_endpoint
from tarscascade.wire.idl.endpointf import EndpointF


@dataclass
class Item:
    active: list[EndpointF] = field(default_factory=list)
    inactive: list[EndpointF] = field(default_factory=list)


@dataclass
class SetEntry:
    set_id: str
    set_area: str
    active: bool
    ep: EndpointF


@dataclass
class Oracle:
    objects: dict[str, Item] = field(default_factory=dict)
    sets: dict[str, dict[str, list[SetEntry]]] = field(default_factory=dict)
    by_ip: dict[str, int] = field(default_factory=dict)
    by_name: dict[str, int] = field(default_factory=dict)
    priorities: list[tuple[int, set[int], str]] = field(default_factory=list)  # id, groups, station
    invalid_set_keys: set[tuple[str, str, int]] = field(default_factory=set)
    registry_keys: set[tuple[str, str, int]] = field(default_factory=set)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        servers: Sequence[dict[str, Any]],
        adapters: Sequence[dict[str, Any]],
        registry_info: Sequence[dict[str, Any]],
        rules: Sequence[dict[str, Any]],
        priorities: Sequence[dict[str, Any]],
    ) -> Oracle:
        o = cls()
        for r in sorted(rules, key=lambda r: r["group_id"]):  # load2GroupMap, ORDER BY group_id
            for ip in (r["allow_ip_rule"] or "").split("|"):
                if ip:
                    o.by_ip[ip] = r["group_id"]
            o.by_name[r["group_name"]] = r["group_id"]
        for p in sorted(priorities, key=lambda p: (p["list_order"], p["id"])):
            parts = [x for x in _split_any(p["group_list"] or "") if x]
            groups = {int(x) for x in parts if x.lstrip("-").isdigit()}
            o.priorities.append((p["id"], groups, p["station"]))
        # RIGHT JOIN t_server_conf USING (application, server_name, node_name)
        for s in servers:
            for a in adapters:
                if (a["application"], a["server_name"], a["node_name"]) == (
                    s["application"],
                    s["server_name"],
                    s["node_name"],
                ):
                    o._row(a["servant"], a["endpoint"], s)
        for r in registry_info:  # servant, endpoint, enable_group; present_state both states
            state = r["present_state"]
            row = {
                "setting_state": state,
                "present_state": state,
                "flow_state": "active",
                "enable_group": r["enable_group"],
                "node_name": r["tars_version"],
                "enable_set": "N",
                "ip_group_name": "",
                "bak_flag": 0,
            }
            o._row(r["servant"], r["endpoint"], row, registry=True)
        return o

    def _row(self, servant: str, endpoint: str, s: dict[str, Any], registry: bool = False) -> None:
        if not servant or not endpoint:
            return
        try:
            ep = parse_endpoint(endpoint)
        except EndpointSyntaxError:
            return  # unparsable endpoint: row skipped
        ip_group = (s.get("ip_group_name") or "").strip()
        real = self.by_name.get(ip_group, -1) if ip_group else self.group_of(ep.host)
        work = real if (s.get("enable_group") or "").lower() == "y" else -1
        if s["bak_flag"] == 1:
            return
        set_id = ""
        set_on = (s.get("enable_set") or "").lower() == "y"
        name = area = group = ""
        if set_on:
            name, area, group = (s.get(c) or "" for c in ("set_name", "set_area", "set_group"))
            set_id = f"{name}.{area}.{group}"
        f = EndpointF(
            host=ep.host,
            port=ep.port,
            timeout=ep.timeout,
            istcp=ep.istcp,
            grid=0,
            groupworkid=work,
            grouprealid=real,
            setId=set_id,
            qos=0,
            bakFlag=0,
            weight=ep.weight,
            weightType=ep.weight_type,
            authType=ep.auth_type,
            nodeName=(s.get("node_name") or "").strip(),
        )
        active = (
            (s["setting_state"] or "").lower() == "active"
            and (s["present_state"] or "").lower() == "active"
            and (s["flow_state"] or "").lower() != "inactive"
        )
        item = self.objects.setdefault(servant, Item())
        (item.active if active else item.inactive).append(f)
        key = (servant, ep.host, ep.port)
        if registry:
            self.registry_keys.add(key)
        valid = bool(name and area and group and name != "*" and area != "*")
        if set_on and not valid:
            self.invalid_set_keys.add(key)
        if set_on and valid:
            self.sets.setdefault(servant, {}).setdefault(name, []).append(
                SetEntry(set_id, f"{name}.{area}", active, f)
            )

    def group_of(self, ip: str) -> int:
        if ip in self.by_ip:
            return self.by_ip[ip]
        parts = ip.split(".")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            star = ".".join(str(int(p) & 255) for p in parts[:3]) + ".*"
            return self.by_ip.get(star, -1)
        return -1

    # ------------------------------------------------------------------ answers

    def find_by_id(self, obj: str) -> tuple[int, list[EndpointF], list[EndpointF]]:
        item = self.objects.get(obj)
        return (0, list(item.active) if item else [], [])

    def find_4any(self, obj: str) -> tuple[int, list[EndpointF], list[EndpointF]]:
        item = self.objects.get(obj)
        if item is None:
            return (0, [], [])
        return (0, list(item.active), list(item.inactive))

    def find_in_group(self, obj: str, caller: str) -> tuple[int, list[EndpointF], list[EndpointF]]:
        item = self.objects.get(obj)
        if item is None:
            return (0, [], [])
        group = self.group_of(caller)
        if group == -1:
            return (0, list(item.active), list(item.inactive))
        act = [e for e in item.active if e.groupworkid == group]
        ina = [e for e in item.inactive if e.groupworkid == group]
        if not act:
            for _pid, groups, _station in self.priorities:
                if group not in groups:
                    continue
                act = [e for e in item.active if e.groupworkid in groups]
                ina = [e for e in item.inactive if e.groupworkid in groups]
                if act:
                    break
        if not act:
            act = [e for e in item.active if e.groupworkid == -1]
            ina = [e for e in item.inactive if e.groupworkid == -1]
        if not act:
            return (0, list(item.active), list(item.inactive))
        return (0, act, ina)

    def find_in_station(
        self, obj: str, station: str
    ) -> tuple[int, list[EndpointF], list[EndpointF]]:
        row = next((g for _pid, g, st in self.priorities if st == station), None)
        if row is None:
            return (-1, [], [])
        item = self.objects.get(obj)
        if item is None:
            return (0, [], [])
        return (
            0,
            [e for e in item.active if e.grouprealid in row],
            [e for e in item.inactive if e.grouprealid in row],
        )

    def find_in_set(
        self, obj: str, set_id: str, caller: str
    ) -> tuple[int, list[EndpointF], list[EndpointF]]:
        parts = [p for p in set_id.split(".") if p]
        if len(parts) != 3 or parts[0] == "*" or parts[1] == "*":
            return (-1, [], [])
        name, area, group = parts
        set_id = f"{name}.{area}.{group}"  # rebuilt from the non-empty parts
        members = self.sets.get(obj, {}).get(name)
        if members is None:
            return self.find_in_group(obj, caller)
        if group == "*":
            chosen = [m for m in members if m.set_area == f"{name}.{area}"]
        else:
            chosen = [m for m in members if m.set_id == set_id]
            if not chosen:
                chosen = [m for m in members if m.set_id == f"{name}.{area}.*"]
        if not chosen:
            return (-1, [], [])
        return (0, [m.ep for m in chosen if m.active], [m.ep for m in chosen if not m.active])

    # ------------------------------------------------------------------ comparison

    def normalize(
        self, obj: str, answer: tuple[int, list[EndpointF], list[EndpointF]]
    ) -> tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """TARS's answer with tarscascade's documented differences applied (module doc)."""
        ret, act, ina = answer

        def fix(e: EndpointF) -> EndpointF:
            key = (obj, e.host, e.port)
            if key in self.invalid_set_keys:
                e = replace(e, setId="")
            if key in self.registry_keys:
                e = replace(e, nodeName="")
            return e

        seen: set[tuple[str, int]] = set()
        out_a: list[EndpointF] = []
        for e in act:
            if (e.host, e.port) not in seen:
                seen.add((e.host, e.port))
                out_a.append(fix(e))
        out_i: list[EndpointF] = []
        for e in ina:
            if (e.host, e.port) not in seen:
                seen.add((e.host, e.port))
                out_i.append(fix(e))
        return (ret, _sorted(out_a, self.duplicated(obj)), _sorted(out_i, self.duplicated(obj)))

    def duplicated(self, obj: str) -> set[tuple[str, int]]:
        """(host, port) pairs of ``obj`` that several rows produce."""
        item = self.objects.get(obj)
        if item is None:
            return set()
        counts: dict[tuple[str, int], int] = {}
        for e in (*item.active, *item.inactive):
            counts[(e.host, e.port)] = counts.get((e.host, e.port), 0) + 1
        return {hp for hp, n in counts.items() if n > 1}


def shape(
    obj: str,
    answer: tuple[int, Sequence[EndpointF], Sequence[EndpointF]],
    dup: set[tuple[str, int]],
) -> tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """tarscascade's answer in the comparison form."""
    ret, act, ina = answer
    return (ret, _sorted(list(act), dup), _sorted(list(ina), dup))


def _sorted(eps: list[EndpointF], dup: set[tuple[str, int]]) -> list[tuple[Any, ...]]:
    # For a collapsed pair, which copy's other fields win is tarscascade's choice (the
    # first active copy); compare only that it is there, and in which list.
    return sorted((e.host, e.port) if (e.host, e.port) in dup else _fields(e) for e in eps)


def _fields(e: EndpointF) -> tuple[Any, ...]:
    return (
        e.host,
        e.port,
        e.timeout,
        e.istcp,
        e.grid,
        e.groupworkid,
        e.grouprealid,
        e.setId,
        e.qos,
        e.bakFlag,
        e.weight,
        e.weightType,
        e.authType,
        e.nodeName,
    )


def _split_any(text: str) -> list[str]:
    out, cur = [], ""
    for ch in text:
        if ch in "|,;":
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out
