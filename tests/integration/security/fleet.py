"""A registry and node agents on real TCP for the attack tests, and what they check."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from tarscascade.cascade import ClientOptions
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.model import Category, Record
from tarscascade.node.app import NodeConfig
from tarscascade.registry.core import RegistryCore, RegistryOptions
from tarscascade.store import Put
from tarscascade.transport import Channel
from tarscascade.wire.idl.reportf import REPORT_SERVANT, REPORT_STATES, ReportStatesReq
from tarscascade.wire.packets import Ret

FAST = ClientOptions(heartbeat_interval=0.2, reconnect_initial=0.05, reconnect_max=0.3)
SHARED = "shared-bootstrap-token"
PAY = "Pay.Core.PayObj"
HELLO = "Test.HelloServer.HelloObj"


def registry(tmp_path: Path, **kw: Any) -> RegistryProcess:
    kw.setdefault("listen", ("127.0.0.1", 0))
    kw.setdefault("http", None)
    return RegistryProcess(
        RegistryConfig(
            db=f"sqlite:///{tmp_path}/registry.db",
            options=RegistryOptions(tail_interval=0.05, reload_interval=0),
            **kw,
        )
    )


def node_config(name: str, rp: RegistryProcess, **kw: Any) -> NodeConfig:
    kw.setdefault("listen", ("127.0.0.1", 0))
    kw.setdefault("upstreams", [("127.0.0.1", rp.tars_port)])
    return NodeConfig(name=name, client_options=FAST, report_interval=0.05, **kw)


def routing(core: RegistryCore) -> dict[Category, tuple[object, int]]:
    """Every category's version and digest: equal before and after = nothing changed."""
    return {c: (core.catalog.version(c), core.catalog.digest(c)) for c in Category}


def local_ip() -> str | None:
    """A non-loopback address of this machine (peers connecting to it are not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            ip = str(s.getsockname()[0])
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


async def put(core: RegistryCore, *records: Record) -> None:
    await core.write([Put(r) for r in records])


async def report(port: int, req: ReportStatesReq) -> tuple[int, str]:
    """``ReportObj.reportStates`` straight to a port: (its return value, its message)."""
    return await report_on(Channel("127.0.0.1", port), req)


async def report_on(channel: Channel, req: ReportStatesReq) -> tuple[int, str]:
    """The same on a given channel (closed after)."""
    async with channel as ch:
        rsp = await ch.invoke(REPORT_SERVANT, REPORT_STATES.name, REPORT_STATES.encode_args(req))
    assert rsp is not None
    assert rsp.iRet == Ret.SUCCESS, rsp
    (ret,) = REPORT_STATES.decode_result(rsp.sBuffer)
    return int(ret), rsp.sResultDesc
