"""A node's own credentials, as it presents them to each upstream.

To a registry a node sends its secret (the registry hashes and compares). To a relay
(an upstream given as ``NAME@HOST:PORT``) it sends proofs only: its secret never reaches
another node. In the shared-token bootstrap mode every upstream gets the token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tarscascade.auth.proofs import PURPOSE_RELAYED, PURPOSE_REPORT, make_proof, report_digest
from tarscascade.auth.secrets import is_node_secret, node_key

Upstream = tuple[str, int]


@dataclass(slots=True)
class NodeIdentity:
    name: str
    #: a per-node secret (``tcn1_...``), a shared bootstrap token, or "" (no credentials)
    secret: str = ""
    #: upstreams that are relays -> the relay's node name (the audience of proofs)
    relays: Mapping[Upstream, str] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    _last_report_ms: int = 0

    @property
    def per_node(self) -> bool:
        return is_node_secret(self.secret)

    def relay_of(self, upstream: Upstream | None) -> str | None:
        """The relay's name when ``upstream`` is a relay (in per-node mode), else None."""
        if upstream is None or not self.per_node:
            return None
        return self.relays.get(upstream)

    def subscribe_token(self, upstream: Upstream) -> str:
        relay = self.relay_of(upstream)
        if relay is None:
            return self.secret
        return self._relayed(relay)

    def heartbeat_proof(self, upstream: Upstream) -> str:
        """A fresh proof for a relay (it passes the latest up with its heartbeat); ""."""
        relay = self.relay_of(upstream)
        return "" if relay is None else self._relayed(relay)

    def report_token(
        self, upstream: Upstream, states: list[tuple[str, str, int, str, str, str]]
    ) -> str:
        if self.relay_of(upstream) is None:
            return self.secret
        # strictly growing per node: the registry refuses a replayed report
        ms = max(int(self.clock() * 1000), self._last_report_ms + 1)
        self._last_report_ms = ms
        key = node_key(self.secret)
        return make_proof(key, PURPOSE_REPORT, self.name, "", ms, report_digest(states))

    def _relayed(self, relay: str) -> str:
        ms = int(self.clock() * 1000)
        return make_proof(node_key(self.secret), PURPOSE_RELAYED, self.name, relay, ms)
