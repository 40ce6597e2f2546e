"""One log line per fleet state change that matters, never one per request.

About every second the watcher compares what the cascade hub knows of each node with what it
knew before and logs the transitions: a node ``joined`` or ``left`` the cascade, fell
``behind`` (some revision the registry had :data:`BEHIND_AFTER_S` ago still not held:
a node is behind for a few milliseconds after every write, and under a steady stream of
writes it is always a revision or two behind, which is not news), went
``stale`` (connected, silent past its heartbeats: :func:`~tarscascade.cascade.is_silent`),
or is ``current`` again; and
the registry's epoch changed. Each line carries ``event`` and the node's fields as
``extra`` data, so ``--log-format json`` emits them as keys.

:meth:`FleetWatcher.check` is the decision (pure: the states and the time in, the
events out); :meth:`run` is the loop around it. A round is O(nodes), so rounds are paced
to take at most :data:`BUDGET` of a core (a round over 1,000 nodes takes a few ms, every
second; over 20,000 nodes, one every few seconds): the times in the lines come from the
nodes' own timestamps, so a later round still reports them right.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tarscascade.cascade import CascadeHub, NodeState, NodeView, heard_at, is_silent
from tarscascade.registry.core import paced_wait

log = logging.getLogger("tarscascade.fleet")

BEHIND_AFTER_S = 5.0
INTERVAL_S = 1.0
#: the share of a core the rounds may take (past it, they come less often than INTERVAL_S)
BUDGET = 0.005


@dataclass(frozen=True, slots=True)
class FleetEvent:
    event: str  # node_joined, node_left, node_behind, node_stale, node_current, epoch_changed
    message: str
    fields: dict[str, Any]


@dataclass(slots=True)
class _Seen:
    connected: bool
    condition: str  # current, behind, stale (what was last logged)
    behind_since: float | None
    #: per category, the revision the registry had when ``behind_since`` was set: once the
    #: node holds all of it, it was only following a stream of writes
    target: dict[str, int] | None = None


_NEVER = 2**62  # another epoch: no revision of this one reaches it


def _where(name: str, st: NodeState | NodeView) -> dict[str, Any]:
    """An event's node fields (built only for an event: a round visits every node)."""
    return {"node": name, "via": st.via or None, "address": st.address or None}


def _reached(held: dict[str, int], target: dict[str, int]) -> bool:
    return all(held.get(c, 0) >= r for c, r in target.items())


class FleetWatcher:
    def __init__(
        self,
        hub: CascadeHub,
        epoch: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.epoch = epoch
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._epoch: str | None = None

    def check(self, states: Mapping[str, NodeState | NodeView], now: float) -> list[FleetEvent]:
        out: list[FleetEvent] = []
        epoch = self.epoch()
        if self._epoch is not None and epoch != self._epoch:
            out.append(
                FleetEvent(
                    "epoch_changed",
                    f"registry epoch changed {self._epoch} -> {epoch}",
                    {"old_epoch": self._epoch, "epoch": epoch},
                )
            )
        self._epoch = epoch
        for name, st in states.items():
            seen = self._seen.get(name)
            if seen is None or seen.connected != st.connected:
                where = _where(name, st)
                if st.connected:
                    via = f" via {st.via}" if st.via else ""
                    out.append(FleetEvent("node_joined", f"node {name} joined{via}", where))
                elif seen is not None:
                    out.append(FleetEvent("node_left", f"node {name} left the cascade", where))
                seen = self._seen[name] = _Seen(st.connected, "current", None)
            if not st.connected:
                continue
            # most nodes are current: their zero lags need no dict of their own (None is a
            # lag too: another epoch)
            lags = st.lag.values()
            lag = (
                {c.value: n for c, n in st.lag.items() if n != 0}
                if any(lags) or None in lags
                else {}
            )
            if not lag:
                if seen.target is not None:
                    seen.behind_since, seen.target = None, None
            else:
                held = {c.value: v.revision for c, v in st.held.items()}
                if seen.target is None or _reached(held, seen.target):
                    seen.behind_since = now  # a new stretch: is what the registry had held?
                    seen.target = {
                        c: held.get(c, 0) + n if n is not None else _NEVER for c, n in lag.items()
                    }
            heard = heard_at(st)
            if is_silent(st, now):
                condition = "stale"
            elif seen.behind_since is not None and now - seen.behind_since >= BEHIND_AFTER_S:
                condition = "behind"
            elif not lag:
                condition = "current"
            else:
                condition = seen.condition  # behind only briefly: nothing to say yet
            if condition != seen.condition:
                seen.condition = condition
                out.append(self._condition(name, condition, lag, now - heard, _where(name, st)))
        for name in list(self._seen):
            if name not in states:  # forgotten by the hub (a relay stopped reporting it)
                gone = self._seen.pop(name)
                if gone.connected:
                    where = {"node": name, "via": None, "address": None}
                    out.append(FleetEvent("node_left", f"node {name} left the cascade", where))
        return out

    @staticmethod
    def _condition(
        name: str, condition: str, lag: dict[str, int | None], silent: float, where: dict[str, Any]
    ) -> FleetEvent:
        if condition == "stale":
            text = f"node {name} is stale: not heard from for {silent:.0f} s"
            return FleetEvent("node_stale", text, where | {"silent_s": round(silent, 1)})
        if condition == "behind":
            shown = ", ".join(f"{c} {'another epoch' if n is None else n}" for c, n in lag.items())
            text = f"node {name} is behind for {BEHIND_AFTER_S:g} s: {shown}"
            return FleetEvent("node_behind", text, where | {"lag": lag})
        return FleetEvent("node_current", f"node {name} is current again", where)

    async def run(self, interval: float = INTERVAL_S, budget: float = BUDGET) -> None:
        while True:
            started = time.perf_counter()
            for ev in self.check(self.hub.fleet_view(), self.clock()):
                level = (
                    logging.INFO
                    if ev.event in ("node_joined", "node_current")
                    else (logging.WARNING)
                )
                log.log(level, ev.message, extra={"event": ev.event, **ev.fields})
            await asyncio.sleep(paced_wait(interval, time.perf_counter() - started, budget))
