"""The node agent's configuration, and the address it is known by."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tarscascade.cascade import ClientOptions, HubOptions
from tarscascade.model import node_name_error
from tarscascade.node.disk import DiskOptions
from tarscascade.node.keepalive import DEFAULT_KEEPALIVE_TIMEOUT
from tarscascade.transport import ServerOptions, TlsConfig
from tarscascade.wire.hosts import split_host_port
from tarscascade.wire.idl.serverf import DEFAULT_NODE_PORT


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
    #: as a relay. It grants its leaves no long idle heartbeats: its sessions' expiry is
    #: what ends a leaf lost behind a proxy, and the registry vouches for the leaves it
    #: lists (it reports a lost one at once)
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


def split_advertise(text: str) -> tuple[str, int | None]:
    """``HOST:PORT``, ``[v6]:PORT``, ``HOST`` or ``[v6]`` -> (host, port or None)."""
    host, port = split_host_port(text)
    return host, int(port) if port.isdigit() else None
