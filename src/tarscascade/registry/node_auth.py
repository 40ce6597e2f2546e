"""Who may speak for which node at this registry (the Consul model: an agent is the
authority for its own node only).

Three modes, named for what they are:

* ``node`` — per-node credentials: ``tarscascade node add NAME`` issues a secret (shown
  once; only its SHA-256 node key is stored, ``tc_node_credentials``). A subscribe or a
  report must carry that node's secret, or (through a relay) a proof made with its key
  (``auth/proofs.py``). A relay's claims about descendants are accepted only with each
  descendant's own fresh proof naming that relay.
* ``shared`` — the bootstrap/dev mode (``tarscascade up``, tests): one token for every
  node; whoever holds it may speak for any node name.
* ``open`` — no credentials at all (loopback only; the runtime refuses it elsewhere).

Credentials are cached in memory (checks are synchronous, on the event loop) and
reloaded every ``reload_interval`` so a credential issued or revoked through another
registry on the same database takes effect here too; a revoked node's session ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tarscascade.auth import (
    PURPOSE_RELAYED,
    PURPOSE_REPORT,
    credential_equal,
    is_node_secret,
    new_node_secret,
    node_key,
    parse_proof,
    proof_fresh,
    report_digest,
    secret_matches,
    verify_proof,
)
from tarscascade.errors import StoreError
from tarscascade.store import CredentialTable, NodeCredential
from tarscascade.wire.idl.cascadef import NodeAckF
from tarscascade.wire.idl.reportf import ReportStatesReq

log = logging.getLogger(__name__)

Mode = Literal["open", "shared", "node"]
#: a credential missing from the cache triggers a reload at most this often
MISS_RELOAD_INTERVAL_S = 1.0
#: at most this many (caller, subject) pairs are remembered for log-once refusals
MAX_LOGGED = 10_000


@dataclass(slots=True)
class AuthStats:
    subscribe_refused: int = 0
    reports_refused: int = 0
    descendants_refused: int = 0
    proofs_verified: int = 0
    reloads: int = 0


@dataclass(slots=True)
class OncePer:
    """Log a refusal once per key (bounded memory); count every one."""

    seen: set[tuple[str, ...]] = field(default_factory=set)

    def first(self, *key: str) -> bool:
        if key in self.seen:
            return False
        if len(self.seen) < MAX_LOGGED:
            self.seen.add(key)
        return True


class NodeAuthority:
    def __init__(
        self,
        mode: Mode,
        *,
        shared_token: str | None = None,
        credentials: CredentialTable | None = None,
        clock: Callable[[], float] = time.time,
        reload_interval: float = 30.0,
    ) -> None:
        if mode == "shared" and not shared_token:
            raise ValueError("the shared-token mode needs a token")
        if mode == "node" and credentials is None:
            raise ValueError("per-node credentials need the store's credential table")
        self.mode: Mode = mode
        self._shared = shared_token or ""
        self._table = credentials
        self._clock = clock
        self.reload_interval = reload_interval
        self._creds: dict[str, NodeCredential] = {}
        #: the last proof verified per node (a relay repeats it: no MAC needed again)
        self._verified: dict[str, str] = {}
        self._last_report_ms: dict[str, int] = {}
        self._last_miss_reload = -1e9
        self._reloading: asyncio.Task[None] | None = None
        self._revoked_listeners: list[Callable[[str], object]] = []
        self._logged = OncePer()
        self.stats = AuthStats()

    # ------------------------------------------------------------------ credentials

    async def load(self) -> None:
        if self._table is None:
            return
        rows = await asyncio.to_thread(self._table.load_all)
        fresh = {c.name: c for c in rows}
        gone = [n for n, c in self._creds.items() if fresh.get(n) != c]
        self._creds = fresh
        self.stats.reloads += 1
        for name in gone:
            self._forget(name)

    async def run(self) -> None:
        """Reload periodically (credentials issued or revoked by other registries)."""
        if self.mode != "node" or self.reload_interval <= 0:
            return
        while True:
            await asyncio.sleep(self.reload_interval)
            try:
                await self.load()
            except StoreError as exc:
                log.warning("node credentials not reloaded: %s", exc)

    async def issue(self, name: str, hosts: Sequence[str] = ()) -> str:
        """A new secret for ``name`` (replacing any older one); returned once, never kept."""
        if self._table is None:
            raise StoreError("this registry keeps no node credentials")
        secret = new_node_secret()
        cred = NodeCredential(name, node_key(secret), tuple(hosts))
        stored = await asyncio.to_thread(self._table.put, cred)
        self._creds[name] = stored
        self._forget(name)  # the old secret's sessions end
        return secret

    async def revoke(self, name: str) -> bool:
        if self._table is None:
            return False
        found = await asyncio.to_thread(self._table.delete, name)
        self._creds.pop(name, None)
        self._forget(name)
        return found

    def credential(self, name: str) -> NodeCredential | None:
        return self._creds.get(name)

    def add_revoked_listener(self, fn: Callable[[str], object]) -> None:
        """``fn(name)`` when a node's credential is replaced or removed (end its session)."""
        self._revoked_listeners.append(fn)

    def _forget(self, name: str) -> None:
        self._verified.pop(name, None)
        for fn in self._revoked_listeners:
            try:
                fn(name)
            except Exception:
                log.exception("revoked-credential listener failed")

    def _lookup(self, name: str) -> NodeCredential | None:
        cred = self._creds.get(name)
        if cred is None and self._table is not None:
            self._reload_soon()
        return cred

    def _reload_soon(self) -> None:
        now = time.monotonic()
        if now - self._last_miss_reload < MISS_RELOAD_INTERVAL_S or self._reloading is not None:
            return
        self._last_miss_reload = now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        async def reload() -> None:
            try:
                await self.load()
            except StoreError as exc:
                log.warning("node credentials not reloaded: %s", exc)
            finally:
                self._reloading = None

        self._reloading = loop.create_task(reload(), name="node-credentials-reload")

    # ------------------------------------------------------------------ checks

    def authenticate(self, name: str, token: str) -> bool:
        """A subscribe at this registry: ``token`` must be ``name``'s own credential."""
        ok = self._direct(name, token)
        if not ok:
            self.stats.subscribe_refused += 1
            if parse_proof(token) is not None:
                log.warning(
                    "node %r sent a relay proof to a registry: give the registry's address "
                    "without NAME@ in its --upstream",
                    name,
                )
        return ok

    def _direct(self, name: str, token: str) -> bool:
        if self.mode == "open":
            return True
        if self.mode == "shared":
            return bool(token) and credential_equal(token, self._shared)
        cred = self._lookup(name)
        return cred is not None and is_node_secret(token) and secret_matches(token, cred.key)

    def check_report(self, report: ReportStatesReq) -> bool:
        """A report, direct (the node's secret) or relayed (a proof over its content,
        newer than the last one taken from that node)."""
        name, token = report.nodeName, report.token
        ok = self._report_ok(name, token, report)
        if not ok:
            self.stats.reports_refused += 1
        return ok

    def _report_ok(self, name: str, token: str, report: ReportStatesReq) -> bool:
        if self.mode != "node" or is_node_secret(token):
            return self._direct(name, token)
        proof = parse_proof(token)
        cred = self._lookup(name)
        if proof is None or cred is None or proof.purpose != PURPOSE_REPORT:
            return False
        if not proof_fresh(proof, self._clock()):
            return False
        if proof.issued_ms <= self._last_report_ms.get(name, 0):
            return False  # a replay (or reordered): the node sends a newer one next round
        digest = report_digest(
            (s.objectId, s.host, s.port, s.state, s.endpoint, s.version) for s in report.states
        )
        if not verify_proof(cred.key, proof, name, digest):
            return False
        self._last_report_ms[name] = proof.issued_ms
        return True

    def authorize_descendants(self, relay: str, acks: Sequence[NodeAckF]) -> set[str]:
        """The descendants of ``relay`` this registry believes: in the per-node mode those
        with a fresh proof, made with their own key, naming ``relay`` or a relay that is
        itself one of ``relay``'s accepted descendants."""
        if self.mode != "node":
            return {a.nodeName for a in acks}
        now = self._clock()
        vouching = {relay}
        accepted: set[str] = set()
        pending = list(acks)
        while pending:
            rest = []
            for a in pending:
                verdict = self._descendant(a, vouching, now)
                if verdict is None:
                    rest.append(a)  # its relay may be accepted later in this pass
                elif verdict:
                    accepted.add(a.nodeName)
                    vouching.add(a.nodeName)
                else:
                    self._refused(relay, a.nodeName, "no valid proof")
            if len(rest) == len(pending):
                for a in rest:
                    self._refused(relay, a.nodeName, "its proof names another relay")
                break
            pending = rest
        return accepted

    def _descendant(self, ack: NodeAckF, vouching: Collection[str], now: float) -> bool | None:
        proof = parse_proof(ack.proof)
        if proof is None or proof.purpose != PURPOSE_RELAYED or not proof_fresh(proof, now):
            return False
        if proof.audience not in vouching:
            return None
        if self._verified.get(ack.nodeName) == proof.text:
            return True
        cred = self._lookup(ack.nodeName)
        if cred is None or not verify_proof(cred.key, proof, ack.nodeName):
            return False
        self.stats.proofs_verified += 1
        self._verified[ack.nodeName] = proof.text
        return True

    def _refused(self, relay: str, name: str, why: str) -> None:
        self.stats.descendants_refused += 1
        if self._logged.first("descendant", relay, name):
            log.warning("relay %r claims node %r: refused (%s)", relay, name, why)

    def hosts_of(self, name: str) -> tuple[str, ...]:
        """The hosts pinned for ``name`` by an admin (empty: none pinned)."""
        cred = self._creds.get(name)
        return cred.hosts if cred is not None else ()
