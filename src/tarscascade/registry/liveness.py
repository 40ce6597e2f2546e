"""Node liveness: a node that misses heartbeats for ``timeout`` seconds is dead.

Pure: the caller feeds heartbeats with the time they arrived (its own, and through
``merge`` the newest sightings every registry of a tier shared in the database) and asks
which nodes changed state at ``now``. Dead nodes' endpoints turn inactive through the catalog's
active rule (node alive is one of its three conditions). This replaces TARS's
CheckNodeThread, which marked t_node_info and every t_server_conf row inactive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from tarscascade.model import NodeRecord, State

#: TARS's `/tars/reap<nodeTimeout>` defaults to 250 s; a cascade node heartbeats every few
#: seconds, so a far shorter timeout is safe and makes failover fast.
DEFAULT_NODE_TIMEOUT = 30.0


def idle_grant(idle: float, timeout: float, bound: float, lag: float) -> float:
    """How long an idle node may stay silent (``idle``, or 0: none granted). Granted when
    a connection's word (the node alive ``bound`` seconds ago) reaches the judge ``lag``
    seconds later still inside the node ``timeout`` (always, with liveness off)."""
    if idle <= 0 or (timeout > 0 and bound + lag >= timeout):
        return 0.0
    return idle


@dataclass(slots=True)
class Liveness:
    timeout: float = DEFAULT_NODE_TIMEOUT
    last_seen: dict[str, float] = field(default_factory=dict)

    def heartbeat(self, node: str, now: float) -> None:
        prev = self.last_seen.get(node)
        if prev is None or now > prev:
            self.last_seen[node] = now

    def merge(self, seen: Mapping[str, float]) -> None:
        """Adopt sightings other registries recorded (shared database), as times on
        this registry's clock; a sighting older than the one held changes nothing."""
        for node, t in seen.items():
            self.heartbeat(node, t)

    def forget(self, node: str) -> None:
        self.last_seen.pop(node, None)

    def is_alive(self, node: str, now: float) -> bool:
        t = self.last_seen.get(node)
        return t is not None and now - t <= self.timeout

    def transitions(
        self, nodes: Iterable[NodeRecord], now: float, started_at: float
    ) -> list[NodeRecord]:
        """Node records whose present state must change at ``now``.

        A node not heard from since this registry started (never, or only in sightings
        older than the start) is given one full timeout from ``started_at`` and keeps
        whatever state it has meanwhile: a registry (or a whole tier) restarting does
        not mark every node dead at once, nor revive the dead ones.
        """
        out: list[NodeRecord] = []
        for n in nodes:
            last = self.last_seen.get(n.name)
            if last is None or last < started_at:
                if now - started_at <= self.timeout:
                    continue  # unknown yet: keep whatever state it has
                alive = last is not None and now - last <= self.timeout
            else:
                alive = now - last <= self.timeout
            want = State.ACTIVE if alive else State.INACTIVE
            if n.present_state != want:
                out.append(replace(n, present_state=want))
        return out
