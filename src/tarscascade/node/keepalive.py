"""Business-server liveness on one host, from ``ServerF.keepAlive`` (pure).

TARS's tarsnode marks a server whose adapters stop sending keepAlive as dead and its
registry rows inactive. Here a keepAlive names ``(application, serverName)`` and an
adapter; the adapter is the servant object id (``App.Server.Obj``) or empty for "all
of this server's objects". Each endpoint hosted on this node whose server keeps sending
keepAlive is present (active); one silent for ``timeout`` seconds turns inactive. Only
endpoints that have been heard from at least once are governed: an endpoint registered
by an operator for a process that never heartbeats is left as the operator set it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tarscascade.model import EndpointRecord, State

#: TarsCpp servers heartbeat every 10 s; TarsGo every 10 s by default.
DEFAULT_KEEPALIVE_TIMEOUT = 30.0


def server_of(object_id: str) -> tuple[str, str]:
    parts = object_id.split(".")
    return (parts[0], parts[1]) if len(parts) >= 2 else (object_id, "")


@dataclass(slots=True)
class KeepAliveTracker:
    node_name: str
    timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    #: (application, serverName, adapter) -> last keepAlive time; adapter "" = every object
    last: dict[tuple[str, str, str], float] = field(default_factory=dict)
    pids: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (object id, host, port) -> endpoint string a server announced in its keepAlive context
    announced: dict[tuple[str, str, int], str] = field(default_factory=dict)
    #: (object id, host, port) -> last keepAlive naming that very endpoint; it wins over the
    #: per-server record, so two instances of one server on a host live and leave apart
    last_endpoint: dict[tuple[str, str, int], float] = field(default_factory=dict)

    def keep_alive(
        self,
        application: str,
        server: str,
        pid: int,
        adapter: str,
        now: float,
        endpoint: tuple[str, int, str] | None = None,
    ) -> bool:
        """Record one keepAlive; False (ignored) for pid 0, as tarsnode does.

        A negative pid is the SDK's "leaving" message at a graceful stop: the server's
        endpoints turn inactive at once instead of after the timeout. ``endpoint``
        (host, port, endpoint string) announces the endpoint this process serves.
        """
        if pid == 0 or not application or not server:
            return False
        seen = now if pid > 0 else float("-inf")
        self.pids[(application, server)] = abs(pid)
        if endpoint is not None and adapter:
            host, port, text = endpoint
            self.last_endpoint[(adapter, host, port)] = seen
            if pid > 0:
                self.announced[(adapter, host, port)] = text
        else:
            self.last[(application, server, adapter)] = seen
        return True

    def last_seen(self, r: EndpointRecord) -> float | None:
        own = self.last_endpoint.get((r.object_id, r.host, r.port))
        if own is not None:
            return own
        app, server = server_of(r.object_id)
        specific = self.last.get((app, server, r.object_id))
        whole = self.last.get((app, server, ""))
        seen = [t for t in (specific, whole) if t is not None]
        return max(seen) if seen else None

    def latest(self) -> float:
        return max([*self.last.values(), *self.last_endpoint.values(), 0.0])

    def transitions(self, endpoints: Iterable[EndpointRecord], now: float) -> list[EndpointRecord]:
        """Endpoints of this node whose present state must change at ``now``."""
        out = []
        for r in endpoints:
            if r.node_name != self.node_name:
                continue
            seen = self.last_seen(r)
            if seen is None:
                continue
            want = State.ACTIVE if now - seen <= self.timeout else State.INACTIVE
            if r.present_state != want:
                out.append(r)
        return out
