"""Present-state reports upstream: what keepAlive changed, the loop that sends it.

The node compares what keepAlive says of the endpoints hosted here (and announced ones
the registry does not know yet) with the replica, and reports the differences to its
current upstream's ``ReportObj``, signed for that upstream. A report is not repeated
while the cascade brings its effect back (5 s); a failed one is sent again next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

from tarscascade.auth import NodeIdentity
from tarscascade.catalog import Catalog
from tarscascade.errors import TarsCascadeError
from tarscascade.model import EndpointRecord, State
from tarscascade.node.config import NodeConfig
from tarscascade.node.keepalive import KeepAliveTracker
from tarscascade.transport import Channel, ChannelOptions
from tarscascade.wire.idl.reportf import (
    REPORT_SERVANT,
    REPORT_STATES,
    EndpointStateF,
    ReportStatesReq,
)
from tarscascade.wire.packets import Ret

log = logging.getLogger(__name__)


class Reporter:
    def __init__(
        self,
        config: NodeConfig,
        catalog: Catalog,
        keepalive: KeepAliveTracker,
        identity: NodeIdentity,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.keepalive = keepalive
        self.identity = identity
        #: the current upstream (host, port), None when there is none
        self.upstream: Callable[[], tuple[str, int] | None] = lambda: None
        #: TLS to the upstreams (the cascade client's)
        self.ssl: ssl.SSLContext | None = None
        #: set: report at once (a keepAlive came in)
        self.now = asyncio.Event()
        self.sent = 0
        #: passes of the loop (each decides liveness at ``config.clock()``)
        self.rounds = 0
        self._reported: dict[tuple[str, str, int], tuple[tuple[str, str], float]] = {}
        self._channel: Channel | None = None

    def pending(self, now: float) -> list[EndpointStateF]:
        """Present-state and version changes (and announced unknown endpoints) to send
        upstream."""
        out: list[EndpointStateF] = []
        ka = self.keepalive
        mine = self.catalog.endpoints_of_node(self.config.name)
        known = {(r.object_id, r.host, r.port) for r in mine}
        for r in mine:
            want = ka.desired(r, now)
            version = ka.version_of(r)
            moved = want is not None and want != r.present_state
            if moved or (version and version != r.tars_version):
                state = (want or r.present_state).value
                out.append(EndpointStateF(r.object_id, r.host, r.port, state, version=version))
        for (oid, host, port), text in ka.announced.items():
            if (oid, host, port) not in known:
                seen = ka.last_endpoint.get((oid, host, port))
                if seen is not None and now - seen <= ka.timeout:
                    version = ka.version_of(EndpointRecord(oid, host, port, node_name=ka.node_name))
                    out.append(EndpointStateF(oid, host, port, State.ACTIVE.value, text, version))
        # the same report is not repeated while the cascade brings its effect back
        fresh = []
        for s in out:
            key = (s.objectId, s.host, s.port)
            prev = self._reported.get(key)
            said = (s.state, s.version)
            if prev is None or prev[0] != said or now - prev[1] > 5.0:
                fresh.append(s)
                self._reported[key] = (said, now)
        return fresh

    async def run(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation
            # that lands as the event is set (a report at shutdown), and this loop would
            # then never end
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.report_interval):
                    await self.now.wait()
            self.now.clear()
            states = self.pending(self.config.clock())
            if states:
                await self.send(ReportStatesReq(self.config.name, "", states), own=True)
            self.rounds += 1

    async def send(self, req: ReportStatesReq, *, own: bool = False) -> int:
        """Send a report to the current upstream; -99 when none answers. ``own``: this
        node's report, signed here for that upstream (a relayed one carries its own)."""
        upstream = self.upstream()
        if upstream is None:
            return Ret.UNKNOWN
        host, port = upstream
        if own:
            covered = [
                (s.objectId, s.host, s.port, s.state, s.endpoint, s.version) for s in req.states
            ]
            req.token = self.identity.report_token((host, port), covered)
        ch = self._channel
        if ch is None or (ch.host, ch.port) != (host, port):
            if ch is not None:
                await ch.aclose()
            ch = self._channel = Channel(host, port, ChannelOptions(ssl=self.ssl))
        try:
            (ret,) = await ch.call(REPORT_SERVANT, REPORT_STATES, req, timeout=5.0)
        except TarsCascadeError as exc:
            log.warning("state report upstream failed: %s", exc)
            for s in req.states:  # send again next round
                self._reported.pop((s.objectId, s.host, s.port), None)
            return Ret.UNKNOWN
        self.sent += 1
        return int(ret)

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.aclose()
            self._channel = None
