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
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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
    ClientOptions,
    Freshness,
    HubOptions,
    NodeInfo,
)
from tarscascade.catalog import NO_VERSION, Catalog, QueryAnswerer
from tarscascade.catalog.announce import announce_refusal
from tarscascade.errors import TarsCascadeError
from tarscascade.model import (
    Category,
    ChangeEvent,
    EndpointRecord,
    State,
    Version,
    node_name_error,
)
from tarscascade.node.disk import DiskCopy, DiskOptions
from tarscascade.node.keepalive import DEFAULT_KEEPALIVE_TIMEOUT, KeepAliveTracker
from tarscascade.node.servants import NodeQueryServant
from tarscascade.node.watch import ObjectWatch
from tarscascade.transport import (
    Channel,
    ChannelOptions,
    Current,
    Servant,
    ServerOptions,
    TarsServer,
    TlsConfig,
)
from tarscascade.wire.endpoint import format_endpoint, parse_endpoint
from tarscascade.wire.hosts import is_loopback, is_wildcard
from tarscascade.wire.idl.queryf import QUERY_SERVANT
from tarscascade.wire.idl.reportf import (
    REPORT_F,
    REPORT_SERVANT,
    REPORT_STATES,
    EndpointStateF,
    ReportStatesReq,
)
from tarscascade.wire.idl.serverf import DEFAULT_NODE_PORT, NODE_SERVANT
from tarscascade.wire.packets import Ret

log = logging.getLogger(__name__)


@dataclass(slots=True)
class NodeConfig:
    name: str
    upstreams: list[tuple[str, int]]
    listen: tuple[str, int] = ("127.0.0.1", DEFAULT_NODE_PORT)
    data_dir: Path | None = None
    #: this node's credential: its own secret (``tcn1_...``, from ``tarscascade node
    #: add``), the shared bootstrap token, or "" (none)
    token: str = ""
    #: upstreams that are relays -> the relay's node name (``--upstream NAME@HOST:PORT``):
    #: they get proofs, never the secret
    relays: dict[tuple[str, int], str] = field(default_factory=dict)
    #: the relay-facing port (CascadeObj, ReportObj); None = served on ``listen`` too
    relay_listen: tuple[str, int] | None = None
    #: take ServerF (keepAlive) from non-loopback peers too (off: local processes only)
    serverf_any_peer: bool = False
    #: serve CascadeObj/ReportObj beyond loopback with no credentials and no TLS anyway
    insecure: bool = False
    #: TLS to the upstreams (its certificate, if any, is its identity: mutual TLS) and on
    #: the relay port when ``relay_listen`` is given (the business port stays plain TCP:
    #: stock TARS clients on this host talk to it)
    tls: TlsConfig | None = None
    #: address downstream nodes and the registry see for this node: HOST:PORT, or HOST
    #: (the port is the relay port's); "" = the listen address
    advertise: str = ""
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    #: /healthz answers 503 once the replica has been stale this long (seconds)
    max_stale: float = 60.0
    report_interval: float = 1.0
    #: applied changes are coalesced this long before they are appended to the disk
    #: journal (the disk copy's ``flush_interval``)
    snapshot_interval: float = 0.2
    disk_options: DiskOptions = field(default_factory=DiskOptions)
    # a node holds its replica for good: keep the collector from rescanning it after a snapshot
    client_options: ClientOptions = field(
        default_factory=lambda: ClientOptions(freeze_gc_after_snapshot=True)
    )
    hub_options: HubOptions = field(default_factory=HubOptions)
    server_options: ServerOptions = field(default_factory=ServerOptions)
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        # the registry refuses other names (model.is_node_name): fail here, at start
        for name in (self.name, *self.relays.values()):
            error = node_name_error(name)
            if error is not None:
                raise ValueError(error)


def advertised(advertise: str, listen_host: str, port: int) -> str:
    """The address the cascade records for this node: ``advertise`` as HOST:PORT, a bare
    HOST (or ``[v6]``) with the bound port, or else the listen address."""
    if not advertise:
        return f"{listen_host}:{port}"
    if advertise.endswith("]") or ":" not in advertise:
        return f"{advertise}:{port}"
    return advertise


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
        self.reports_sent = 0
        #: passes of the report loop (each decides liveness at ``config.clock()``)
        self.report_rounds = 0
        self._report_now = asyncio.Event()
        self._changed_ids: set[str] | None = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._reported: dict[tuple[str, str, int], tuple[tuple[str, str], float]] = {}
        self._report_channel: Channel | None = None
        self._upstream_ssl: ssl.SSLContext | None = None
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
            host, _ = _split_advertise(cfg.advertise)
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
        """Revisions behind the upstream per category, as of the upstream's last answer
        (subscribe or heartbeat); None when unknown or on another epoch."""
        upstream = self.client.upstream_versions if self.client is not None else {}
        out: dict[Category, int | None] = {}
        for c in Category:
            up, held = upstream.get(c), self.catalog.version(c)
            same = up is not None and up.epoch != "" and up.epoch == held.epoch
            out[c] = max(0, up.revision - held.revision) if same and up is not None else None
        return out

    def status(self) -> dict[str, Any]:
        cat = self.catalog
        client = self.client
        fresh = self.freshness()
        return {
            "node": self.config.name,
            "stale": self.stale,
            "synced": bool(client and client.synced.is_set()),
            "in_sync": bool(client and client.in_sync),
            "has_data": self.has_data(),
            "loaded_from_disk": self.loaded_from_disk,
            "from_disk_unconfirmed": fresh.from_disk,
            "upstream_stale": bool(client and client.upstream_freshness.stale),
            "contact_age_s": None if fresh.contact_age >= 86_400.0 else fresh.contact_age,
            "stale_for_s": None if (gone := self.stale_for()) == float("inf") else gone,
            "ahead_of_upstream": sorted(c.value for c in client.ahead_of_upstream)
            if client
            else [],
            "lineage_held": sorted(c.value for c in client.held_back) if client else [],
            "upstream": f"{client.upstream[0]}:{client.upstream[1]}"
            if client and client.upstream
            else None,
            "upstreams": [f"{h}:{p}" for h, p in self.config.upstreams],
            "categories": {
                c.value: {
                    "version": {"epoch": cat.version(c).epoch, "revision": cat.version(c).revision},
                    "digest": f"{cat.digest(c):016x}",
                }
                for c in Category
            },
            "lag": {c.value: n for c, n in self.lag().items()},
            "counts": cat.counts(),
            "client": dataclasses.asdict(client.stats) if client else {},
            "downstream_nodes": len(self.hub.node_states()),
            "keepalive_servers": len(self.keepalive.servers),
            "servers": self.keepalive.view(self.config.clock()),
            "subscriptions": self.watch.subscriptions,
            "reports_sent": self.reports_sent,
            "disk": self.disk.status() if self.disk is not None else None,
        }

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
        self.identity = NodeIdentity(cfg.name, cfg.token, cfg.relays)
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
                on_keepalive=self._report_now.set,
                announce_check=self.check_announce,
                serverf_any_peer=cfg.serverf_any_peer,
            )
            self.server_obj = server_obj
            query_obj = NodeQueryServant(QUERY_SERVANT, *servant_args)
            relay_servants: list[Servant] = [self.hub.servant, _ReportRelay(self)]
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
            self._upstream_ssl = client_opts.ssl
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
            )
            self.client.set_descendant_floor(self.hub.descendant_floor)
            self.client.from_disk = self.loaded_from_disk
            self.client.start()
            self._spawn(self._report_loop(), "node-reports")
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
        if self._report_channel is not None:
            await self._report_channel.aclose()
            self._report_channel = None
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
        if age is None:
            return
        self.loaded_from_disk = self.has_data()
        self.disk_age = age
        self.watch.changed(None, max(v.revision for v in self.catalog.versions().values()))
        log.info("loaded the last-known-good replica (%.0f s old)", age)

    # ------------------------------------------------------------------ reports upstream

    def pending_reports(self, now: float) -> list[EndpointStateF]:
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

    async def _report_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._report_now.wait(), self.config.report_interval)
            self._report_now.clear()
            states = self.pending_reports(self.config.clock())
            if states:
                await self.report_upstream(ReportStatesReq(self.config.name, "", states), own=True)
            self.report_rounds += 1

    async def report_upstream(self, req: ReportStatesReq, *, own: bool = False) -> int:
        """Send a report to the current upstream; -99 when none answers. ``own``: this
        node's report, signed here for that upstream (a relayed one carries its own)."""
        client = self.client
        if client is None or client.upstream is None:
            return Ret.UNKNOWN
        host, port = client.upstream
        if own:
            covered = [
                (s.objectId, s.host, s.port, s.state, s.endpoint, s.version) for s in req.states
            ]
            req.token = self.identity.report_token((host, port), covered)
        ch = self._report_channel
        if ch is None or (ch.host, ch.port) != (host, port):
            if ch is not None:
                await ch.aclose()
            ch = self._report_channel = Channel(host, port, ChannelOptions(ssl=self._upstream_ssl))
        try:
            (ret,) = await ch.call(REPORT_SERVANT, REPORT_STATES, req, timeout=5.0)
        except TarsCascadeError as exc:
            log.warning("state report upstream failed: %s", exc)
            for s in req.states:  # send again next round
                self._reported.pop((s.objectId, s.host, s.port), None)
            return Ret.UNKNOWN
        self.reports_sent += 1
        return int(ret)


def _split_advertise(text: str) -> tuple[str, int | None]:
    """``HOST:PORT``, ``[v6]:PORT``, ``HOST`` or ``[v6]`` -> (host, port or None)."""
    t = text.strip()
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        port = rest.lstrip(":")
    elif t.count(":") == 1:
        host, port = t.split(":")
    else:
        host, port = t, ""
    return host, int(port) if port.isdigit() else None


class _ReportRelay:
    """``ReportObj`` on a node: downstream nodes' reports are forwarded upstream as is."""

    name = REPORT_SERVANT
    methods = REPORT_F.methods

    def __init__(self, agent: NodeAgent) -> None:
        self.agent = agent

    def dispatch(self, current: Current) -> Any:
        req = current.request
        if req.sFuncName != REPORT_STATES.name:
            return (Ret.NO_FUNC, b"", f"ReportF has no function {req.sFuncName!r}")
        try:
            (report,) = REPORT_STATES.decode_args(req.sBuffer)
        except TarsCascadeError as exc:
            return (Ret.SERVER_DECODE_ERR, b"", str(exc))
        return self._forward(report)

    async def _forward(self, report: ReportStatesReq) -> tuple[int, bytes, str]:
        ret = await self.agent.report_upstream(report)
        if ret == Ret.UNKNOWN:
            return (Ret.UNKNOWN, b"", "no upstream reachable")
        return (Ret.SUCCESS, REPORT_STATES.encode_result(ret), "")
