"""Business-server liveness on one host, from ``ServerF`` calls (pure, no I/O).

The rules follow tarsnode's ``ServerObject`` (TarsFramework NodeServer), because stock
TARS servers are written against it (README, "Compatibility"):

* Liveness is per server, ``(application, serverName)``. Any ``keepAlive`` with pid > 0
  refreshes the whole server, whatever adapter it names (an unknown one too).
* The adapter names the server's *adapter*, not an object: TarsCpp and TarsGo send
  ``""`` once at start-up (= every adapter), then one beat per adapter name from their
  config (``Test.HelloServer.HelloObjAdapter``) and ``AdminAdapter``. An endpoint record
  maps to its adapter by ``EndpointRecord.adapter`` (``adapter_name``, default
  ``<object id>Adapter``); the SDK names the object id itself, which matches too.
* ``AdminAdapter`` is the admin port every TARS server has: a server beat only.
* A named adapter that has beaten once and then falls silent for ``timeout`` while its
  server still beats takes only its own endpoints out (TarsCpp and TarsGo stop beating an
  adapter whose threads are stuck; tarsnode would stop the whole process as a zombie,
  which a node that does not run the process cannot do). An adapter never named is
  governed by its server's beats alone, so a record whose adapter name does not match
  the server's config still works as long as the server runs.
* ``keepActiving`` means *activating* (still in ``initialize()``): the server's
  endpoints are not present until its first ``keepAlive``.
* ``reportVersion`` is remembered per server and reported upstream with its endpoints.

Only endpoints of servers heard from at least once are governed: an endpoint registered
by an operator for a process that never heartbeats is left as the operator set it.

The SDK (``client/host.py``) adds two things a stock tarsnode ignores: the keepAlive
context names the endpoint the process serves (several instances of one server on a
host live and leave apart, and an unknown endpoint gets registered), and a negative pid
says "this process is leaving" (its endpoints turn inactive at once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from tarscascade.model import EndpointRecord, State

#: TarsCpp servers beat every ~11 s (HEART_BEAT_INTERVAL 10 s, checked with ">"), TarsGo
#: every 10 s (mainloopticker); tarsnode's shipped heartTimeout is 45 s.
DEFAULT_KEEPALIVE_TIMEOUT = 30.0
#: the admin adapter every TARS server has: it beats for the server, serves no object
ADMIN_ADAPTER = "AdminAdapter"
#: bounds on what local processes can make the node remember (hostile or buggy peers)
MAX_SERVERS = 10_000
MAX_ADAPTERS_PER_SERVER = 256
MAX_ANNOUNCED = 10_000
_NEVER = float("-inf")


class Liveness(StrEnum):
    ACTIVE = "active"  # beating
    ACTIVATING = "activating"  # keepActiving: initializing, not present yet
    SILENT = "silent"  # no beat for longer than the timeout
    LEFT = "left"  # said goodbye (SDK, negative pid)


def server_of(object_id: str) -> tuple[str, str]:
    parts = object_id.split(".")
    return (parts[0], parts[1]) if len(parts) >= 2 else (object_id, "")


@dataclass(slots=True)
class ServerBeat:
    """What the node knows of one ``(application, serverName)`` on its host."""

    pid: int
    #: last keepAlive or keepActiving with pid > 0; -inf after a goodbye
    last: float
    activating: bool = False
    #: last keepAlive with adapter "" (it stands for every adapter)
    every_adapter: float = _NEVER
    #: named adapters (not AdminAdapter) -> their last keepAlive
    adapters: dict[str, float] = field(default_factory=dict)
    version: str = ""


@dataclass(slots=True)
class KeepAliveTracker:
    node_name: str
    timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    servers: dict[tuple[str, str], ServerBeat] = field(default_factory=dict)
    #: (object id, host, port) -> endpoint string a server announced in its keepAlive context
    announced: dict[tuple[str, str, int], str] = field(default_factory=dict)
    #: (object id, host, port) -> last keepAlive naming that very endpoint; it wins over the
    #: per-server record, so two instances of one server on a host live and leave apart
    last_endpoint: dict[tuple[str, str, int], float] = field(default_factory=dict)
    #: (object id, host, port) -> the pid of the last keepAlive naming that endpoint
    endpoint_pid: dict[tuple[str, str, int], int] = field(default_factory=dict)
    #: versions reported before the server's first beat
    _early_versions: dict[tuple[str, str], str] = field(default_factory=dict)

    # ------------------------------------------------------------------ ServerF calls

    def keep_alive(
        self,
        application: str,
        server: str,
        pid: int,
        adapter: str,
        now: float,
        endpoint: tuple[str, int, str] | None = None,
    ) -> bool:
        """Record one keepAlive; False when ignored (pid 0, no name, over a bound).

        A negative pid is the SDK's "leaving" message at a graceful stop. ``endpoint``
        (host, port, endpoint string) is the endpoint the process serves (SDK context).
        """
        if pid == 0 or not application or not server:
            return False
        key = (application, server)
        if pid < 0:
            # a goodbye must name the pid that beats for it: another local process cannot
            # take a server out by sending one (it would have to know that pid)
            if endpoint is not None and adapter:
                ek = (adapter, endpoint[0], endpoint[1])
                if self.endpoint_pid.get(ek, -pid) != -pid:
                    return False
                self.last_endpoint[ek] = _NEVER
            elif key in self.servers:
                gone = self.servers[key]
                if gone.pid != -pid:
                    return False
                gone.last = gone.every_adapter = _NEVER
                gone.adapters.clear()
            return True
        beat = self._server(key, pid, now)
        if beat is None:
            return False
        beat.pid = pid
        beat.last = now
        beat.activating = False
        if endpoint is not None and adapter:
            host, port, text = endpoint
            ek = (adapter, host, port)
            if ek not in self.last_endpoint and len(self.last_endpoint) >= MAX_ANNOUNCED:
                return False
            self.last_endpoint[ek] = now
            self.endpoint_pid[ek] = pid
            self.announced[ek] = text
        if adapter == "":
            beat.every_adapter = now
        elif adapter != ADMIN_ADAPTER:
            if adapter not in beat.adapters and len(beat.adapters) >= MAX_ADAPTERS_PER_SERVER:
                return True  # the server beat counts; the extra name is not remembered
            beat.adapters[adapter] = now
        return True

    def keep_activing(self, application: str, server: str, pid: int, now: float) -> bool:
        """The server is initializing: not present until its next keepAlive."""
        if pid <= 0 or not application or not server:
            return False
        beat = self._server((application, server), pid, now)
        if beat is None:
            return False
        beat.pid = pid
        beat.last = now
        beat.activating = True
        return True

    def report_version(self, application: str, server: str, version: str) -> bool:
        if not application or not server:
            return False
        beat = self.servers.get((application, server))
        if beat is not None:
            beat.version = version
        elif len(self._early_versions) < MAX_SERVERS:
            self._early_versions[(application, server)] = version
        else:
            return False
        return True

    def _server(self, key: tuple[str, str], pid: int, now: float) -> ServerBeat | None:
        beat = self.servers.get(key)
        if beat is None:
            if len(self.servers) >= MAX_SERVERS:
                return None
            beat = self.servers[key] = ServerBeat(pid, now)
            beat.version = self._early_versions.pop(key, "")
        return beat

    # ------------------------------------------------------------------ decisions

    def desired(self, r: EndpointRecord, now: float) -> State | None:
        """The present state ``r`` should have at ``now``; None when not governed here."""
        if r.node_name != self.node_name:
            return None
        own = self.last_endpoint.get((r.object_id, r.host, r.port))
        if own is not None:
            return State.ACTIVE if now - own <= self.timeout else State.INACTIVE
        beat = self.servers.get(server_of(r.object_id))
        if beat is None:
            return None
        if beat.activating or now - beat.last > self.timeout:
            return State.INACTIVE
        names = (r.adapter, r.object_id)
        heard = [beat.adapters[n] for n in names if n in beat.adapters]
        if heard and now - max(*heard, beat.every_adapter) > self.timeout:
            return State.INACTIVE  # its adapter fell silent while the server beats on
        return State.ACTIVE

    def transitions(self, endpoints: Iterable[EndpointRecord], now: float) -> list[EndpointRecord]:
        """Endpoints of this node whose present state must change at ``now``."""
        out = []
        for r in endpoints:
            want = self.desired(r, now)
            if want is not None and r.present_state != want:
                out.append(r)
        return out

    def version_of(self, r: EndpointRecord) -> str:
        beat = self.servers.get(server_of(r.object_id))
        return beat.version if beat is not None and r.node_name == self.node_name else ""

    def liveness(self, key: tuple[str, str], now: float) -> Liveness:
        beat = self.servers[key]
        if beat.last == _NEVER:
            return Liveness.LEFT
        if beat.activating:
            return Liveness.ACTIVATING
        return Liveness.ACTIVE if now - beat.last <= self.timeout else Liveness.SILENT

    def latest(self) -> float:
        """The latest keepAlive time (``getLatestKeepAliveTime``), 0 when none."""
        times = [b.last for b in self.servers.values()] + list(self.last_endpoint.values())
        return max([t for t in times if t != _NEVER] + [0.0])

    def view(self, now: float) -> list[dict[str, object]]:
        """The servers heard from, for the node's status (``/v1/status``)."""
        out: list[dict[str, object]] = []
        for (app, server), beat in sorted(self.servers.items()):
            out.append(
                {
                    "application": app,
                    "server": server,
                    "pid": beat.pid,
                    "state": self.liveness((app, server), now).value,
                    "version": beat.version,
                    "last_beat_age": _age(now, beat.last),
                    "adapters": {n: _age(now, t) for n, t in sorted(beat.adapters.items())},
                }
            )
        return out


def _age(now: float, t: float) -> float | None:
    return None if t == _NEVER else round(now - t, 3)
