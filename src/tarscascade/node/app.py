"""The node agent: replica + cascade client + local servants + relay hub + disk snapshot.

* A :class:`CascadeClient` keeps the replica catalog current from the upstreams (the
  registry, or another node: a relay), failing over between them.
* ``tars.tarsnode.ServerObj`` and its alias ``tars.tarsregistry.QueryObj`` answer QueryF
  from the replica with the registry's own catalog code; ServerObj also takes
  ``ServerF.keepAlive`` from the business servers on this host.
* A :class:`CascadeHub` over the replica serves ``CascadeObj`` to downstream nodes, and
  ``ReportObj`` forwards their reports upward: any node can be a relay, at any depth.
* Present-state changes learnt from keepAlive are reported upstream (``ReportObj``).
* The replica is kept on disk (last known good: an image plus a journal of the changes
  since, ``node/disk.py``) and loaded at start, so a node restarted while every
  upstream is down still answers — marked stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any

from tarscascade.auth import (
    PURPOSE_RELAYED,
    NodeIdentity,
    credential_equal,
    is_node_secret,
    parse_proof,
    proof_fresh,
)
from tarscascade.auth.listen import check_tars_listen_safety
from tarscascade.cascade import (
    CascadeClient,
    CascadeHub,
    Freshness,
    NodeInfo,
)
from tarscascade.catalog import NO_VERSION, Catalog, QueryAnswerer
from tarscascade.catalog.announce import announce_refusal
from tarscascade.errors import TarsCascadeError
from tarscascade.model import (
    Category,
    ChangeEvent,
    Version,
)
from tarscascade.node.config import NodeConfig, advertised, split_advertise
from tarscascade.node.disk import DiskCopy
from tarscascade.node.keepalive import KeepAliveTracker
from tarscascade.node.reports import Reporter
from tarscascade.node.servants import NodeQueryServant, ReportRelay
from tarscascade.node.status import node_status, replica_lag
from tarscascade.node.watch import ObjectWatch
from tarscascade.transport import (
    Servant,
    TarsServer,
)
from tarscascade.wire.endpoint import format_endpoint, parse_endpoint
from tarscascade.wire.hosts import is_loopback, is_wildcard
from tarscascade.wire.idl.queryf import QUERY_SERVANT
from tarscascade.wire.idl.reportf import (
    EndpointStateF,
    ReportStatesReq,
)
from tarscascade.wire.idl.serverf import NODE_SERVANT

__all__ = ["NodeAgent", "NodeConfig"]  # NodeConfig: node/config.py

log = logging.getLogger(__name__)


class NodeAgent:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.catalog = Catalog()
        self.answerer = QueryAnswerer(self.catalog)
        self.watch = ObjectWatch()
        self.keepalive = KeepAliveTracker(config.name, config.keepalive_timeout)
        self.identity = NodeIdentity(config.name, config.token, config.relays)
        self.hub = CascadeHub(
            self.catalog,
            authenticate=self._authenticate_leaf,
            options=config.hub_options,
            # a new descendant is reported upward at once (the registry registers it)
            on_subscribe=self._descendant_subscribed,
            # a descendant's ack goes up soon (coalesced), so drain sees nodes behind relays
            on_heartbeat=lambda _name: self.client.request_ack() if self.client else None,
            # downstreams of this relay are exactly as fresh as it is
            freshness=self.freshness,
            # a change its upstream wants acknowledged at once (a drain waits), its
            # leaves acknowledge at once too; the rest as lazily as they were asked
            prompt_acks=lambda: self.client is not None and self.client.upstream_wants_prompt_acks,
            # a lost descendant is reported upward at once too: the upstream keeps the
            # nodes this relay lists alive on this relay's word (idle heartbeats)
            on_lost=lambda: self.client.request_heartbeat() if self.client else None,
        )
        self.client: CascadeClient | None = None
        self.server: TarsServer | None = None
        #: the relay-facing server, when ``relay_listen`` is given
        self.relay_server: TarsServer | None = None
        self.announcements_refused = 0
        self._refusals_logged: set[tuple[str, str]] = set()
        self.disk: DiskCopy | None = None
        if config.data_dir is not None:
            opts = dataclasses.replace(config.disk_options, flush_interval=config.snapshot_interval)
            self.disk = DiskCopy(config.data_dir, config.name, self.catalog, opts)
        self.loaded_from_disk = False
        self.disk_age: float | None = None
        #: present-state reports upstream (``node/reports.py``)
        self.reports = Reporter(config, self.catalog, self.keepalive, self.identity)
        self._changed_ids: set[str] | None = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.catalog.add_listener(self._on_catalog_change)

    # ------------------------------------------------------------------ state

    def has_data(self) -> bool:
        return any(v != NO_VERSION for v in self.catalog.versions().values())

    @property
    def stale(self) -> bool:
        return self.client is None or self.client.stale

    def stale_for(self) -> float:
        """Seconds the replica has been stale (0 while fresh; inf if never fresh)."""
        return float("inf") if self.client is None else self.client.stale_for()

    def freshness(self) -> Freshness:
        """This replica's freshness, as its own downstreams are told."""
        if self.client is None:
            return Freshness(stale=True, contact_age=86_400.0, from_disk=self.loaded_from_disk)
        return self.client.freshness()

    # ------------------------------------------------------------------ identity

    def _authenticate_leaf(self, name: str, token: str) -> bool:
        """A downstream subscribing here. With per-node credentials a relay cannot check
        a leaf's key (only the registry holds keys): it takes a well-formed fresh proof
        naming this relay and passes it up; the registry says which leaves it believes
        (``HeartbeatRsp.refused``) and those sessions end."""
        mine = self.config.token
        if not mine:
            return True
        if not self.identity.per_node:
            return bool(token) and credential_equal(token, mine)
        if is_node_secret(token):
            self._log_once(
                ("secret", name),
                "node %r sent its secret to this relay: give this relay in its --upstream as"
                " %s@HOST:PORT (it then sends proofs only); refused",
                name,
                self.config.name,
            )
            return False
        proof = parse_proof(token)
        return (
            proof is not None
            and proof.purpose == PURPOSE_RELAYED
            and credential_equal(proof.audience, self.config.name)
            and proof_fresh(proof, time.time())
        )

    def _refused_upstream(self, names: list[str]) -> None:
        for name in names:
            if self.hub.end_session(name):
                self._log_once(
                    ("refused", name),
                    "the upstream does not believe descendant %r: its session here ends",
                    name,
                )

    def _rekeyed(self) -> None:
        """The catalog took the upstream's digest key: this relay's own downstreams
        subscribe again (and get it), the disk copy is written again under it."""
        self.hub.rekeyed()
        if self.disk is not None:
            self.disk.rekeyed()

    def _log_once(self, key: tuple[str, str], msg: str, *args: object) -> None:
        if key not in self._refusals_logged:
            if len(self._refusals_logged) < 10_000:
                self._refusals_logged.add(key)
            log.warning(msg, *args)

    # ------------------------------------------------------------------ announcements

    @property
    def public_host(self) -> str:
        """The host other hosts reach this node at (its --advertise, else its listen)."""
        cfg = self.config
        if cfg.advertise:
            host, _ = split_advertise(cfg.advertise)
            return host
        for addr in (cfg.relay_listen, cfg.listen):
            if addr is not None and not is_wildcard(addr[0]):
                return addr[0]
        return ""

    def own_hosts(self) -> set[str]:
        """Hosts whose endpoints this node may announce: its public host, the hosts it
        listens on, and its node record's address."""
        cfg = self.config
        hosts = {self.public_host}
        for addr in (cfg.listen, cfg.relay_listen):
            if addr is not None:
                hosts.add(addr[0])
        rec = self.catalog.get_node(cfg.name)
        if rec is not None:
            hosts.add(rec.host)
        return {h for h in hosts if h and not is_wildcard(h)}

    def check_announce(
        self, object_id: str, endpoint: tuple[str, int, str]
    ) -> tuple[str, int, str] | None:
        """An endpoint a local server announced: taken if the announcement rule holds
        (``catalog/announce.py``); a wildcard host means "this node's public host"."""
        host, port, text = endpoint
        if is_wildcard(host):
            public = self.public_host
            if not public:
                self._refuse_announce(object_id, "a wildcard host and no --advertise")
                return None
            try:
                ep = parse_endpoint(text)
                text = format_endpoint(dataclasses.replace(ep, host=public))
            except (ValueError, TarsCascadeError):
                self._refuse_announce(object_id, "an endpoint that does not parse")
                return None
            host = public
        why = announce_refusal(
            self.catalog,
            self.config.name,
            object_id,
            host,
            self.own_hosts(),
            allow_loopback=is_loopback(self.public_host),
        )
        if why is not None:
            self._refuse_announce(object_id, why)
            return None
        return (host, port, text)

    def _refuse_announce(self, object_id: str, why: str) -> None:
        self.announcements_refused += 1
        self._log_once(("announce", object_id), "announcement of %s refused: %s", object_id, why)

    async def _descendant_subscribed(self, _info: NodeInfo) -> None:
        if self.client is not None:
            self.client.request_heartbeat()

    @property
    def port(self) -> int:
        """The business-facing port (ServerObj, QueryObj)."""
        return self.server.port if self.server is not None else 0

    @property
    def relay_port(self) -> int:
        """The port downstream nodes subscribe to (the business port when not split)."""
        return self.relay_server.port if self.relay_server is not None else self.port

    def lag(self) -> dict[Category, int | None]:
        """Revisions behind the upstream per category (``node/status.py``)."""
        return replica_lag(self.catalog, self.client)

    def status(self) -> dict[str, Any]:
        """What the status page, ``/v1/status`` and the CLI show (``node/status.py``)."""
        return node_status(self)

    # ------------------------------------------------------------------ lifecycle

    def check_listen_safety(self) -> None:
        """The relay-facing servants take subscriptions and reports: beyond loopback,
        only with credentials (or TLS, or ``insecure``)."""
        cfg = self.config
        relay_host = (cfg.relay_listen or cfg.listen)[0]
        check_tars_listen_safety(
            relay_host,
            "the node's relay port (CascadeObj, ReportObj)",
            credentials=bool(cfg.token),
            tls=cfg.tls is not None and cfg.relay_listen is not None,
            insecure=cfg.insecure,
        )
        if cfg.token and not self.identity.per_node and not is_loopback(relay_host):
            log.warning(
                "the node's relay port %s is open beyond loopback with the shared token "
                "(bootstrap/dev mode): any holder may speak for any node",
                relay_host,
            )

    async def start(self) -> None:
        cfg = self.config
        # the credentials as configured now (a caller may set them after construction)
        self.identity = self.reports.identity = NodeIdentity(cfg.name, cfg.token, cfg.relays)
        self.check_listen_safety()
        try:
            if self.disk is not None:
                await self._load_disk(self.disk)
            servant_args = (self.answerer, self.watch, self.has_data)
            server_obj = NodeQueryServant(
                NODE_SERVANT,
                *servant_args,
                keepalive=self.keepalive,
                clock=cfg.clock,
                on_keepalive=self.reports.now.set,
                announce_check=self.check_announce,
                serverf_any_peer=cfg.serverf_any_peer,
            )
            self.server_obj = server_obj
            query_obj = NodeQueryServant(QUERY_SERVANT, *servant_args)
            relay_servants: list[Servant] = [self.hub.servant, ReportRelay(self.report_upstream)]
            business: list[Servant] = [server_obj, query_obj]
            if cfg.relay_listen is None:
                business += relay_servants  # one port for both (fine on loopback)
            self.server = TarsServer(business, cfg.listen[0], cfg.listen[1], cfg.server_options)
            await self.server.start()
            relay_port = self.server.port
            if cfg.relay_listen is not None:
                relay_opts = cfg.server_options
                if cfg.tls is not None and cfg.tls.cert is not None:
                    relay_opts = dataclasses.replace(relay_opts, ssl=cfg.tls.server_context())
                self.relay_server = TarsServer(relay_servants, *cfg.relay_listen, relay_opts)
                await self.relay_server.start()
                relay_port = self.relay_server.port
            relay_host = (cfg.relay_listen or cfg.listen)[0]
            address = advertised(cfg.advertise, relay_host, relay_port)
            client_opts = cfg.client_options
            if cfg.tls is not None:
                client_opts = dataclasses.replace(client_opts, ssl=cfg.tls.client_context())
            self.reports.ssl = client_opts.ssl
            self.client = CascadeClient(
                self.catalog,
                cfg.upstreams,
                node_name=cfg.name,
                token=cfg.token,
                address=address,
                options=client_opts,
                on_applied=self._on_applied,
                descendants=self.hub.descendant_acks,
                token_for=self.identity.subscribe_token,
                proof_for=self.identity.heartbeat_proof,
                on_refused=self._refused_upstream,
                on_rekey=self._rekeyed,
            )
            self.client.set_descendant_floor(self.hub.descendant_floor)
            self.client.set_on_ack_asked(self.hub.ask_acks_now)
            self.client.from_disk = self.loaded_from_disk
            self.client.start()
            self.reports.upstream = lambda: self.client.upstream if self.client else None
            self._spawn(self.reports.run(), "node-reports")
            if self.disk is not None:
                self._spawn(self.disk.run(), "node-disk")
        except BaseException:
            await self.aclose()
            raise

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def aclose(self) -> None:
        """Stop in stages: TARS server, cascade client, loops, final snapshot (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.server is not None:
            await self.server.aclose()
        if self.relay_server is not None:
            await self.relay_server.aclose()
        if self.client is not None:
            await self.client.aclose()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.reports.aclose()
        await self.hub.aclose()
        if self.disk is not None:
            await self.disk.aclose()
        self.answerer.close()

    async def __aenter__(self) -> NodeAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ replica feed

    def _on_catalog_change(self, ids: Any) -> None:
        # the catalog reports which objects an apply touched (None: all of them)
        if ids is None or self._changed_ids is None:
            self._changed_ids = None
        else:
            self._changed_ids |= set(ids)

    def _on_applied(
        self,
        category: Category,
        before: Version | None,
        after: Version,
        events: list[ChangeEvent] | None,
    ) -> None:
        self.hub.replica_applied(category, before, after, events)
        changed, self._changed_ids = self._changed_ids, set()
        if changed is None or changed:
            self.watch.changed(changed, after.revision)
        if self.disk is not None:
            self.disk.applied(category, before, after, events)

    # ------------------------------------------------------------------ disk

    async def _load_disk(self, disk: DiskCopy) -> None:
        age = await disk.load()
        self.hub.rekeyed()  # the copy's key, if it had one (no session exists yet)
        if age is None:
            return
        self.loaded_from_disk = self.has_data()
        self.disk_age = age
        self.watch.changed(None, max(v.revision for v in self.catalog.versions().values()))
        log.info("loaded the last-known-good replica (%.0f s old)", age)

    # ------------------------------------------------------------------ reports upstream

    @property
    def reports_sent(self) -> int:
        return self.reports.sent

    @property
    def report_rounds(self) -> int:
        """Passes of the report loop (each decides liveness at ``config.clock()``)."""
        return self.reports.rounds

    def pending_reports(self, now: float) -> list[EndpointStateF]:
        return self.reports.pending(now)

    async def report_upstream(self, req: ReportStatesReq, *, own: bool = False) -> int:
        return await self.reports.send(req, own=own)
