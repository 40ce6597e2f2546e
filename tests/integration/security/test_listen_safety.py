"""Review D3: the TARS port had no listen-safety check (``--listen 0.0.0.0`` with no
token served ReportObj writes and the whole routing table to anyone). Now, beyond
loopback, a TARS port that takes reports and subscriptions needs credentials (or TLS)
or an explicit ``--insecure``; the shared token is named as the bootstrap mode.
ServerF and the cascade live on separate listeners when asked."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tarscascade.auth.listen import UnsafeListenError
from tarscascade.errors import ServerError
from tarscascade.node.app import NodeAgent
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.cascadef import CASCADE_SERVANT, SUBSCRIBE, SubscribeReq
from tarscascade.wire.idl.queryf import FIND_OBJECT_BY_ID
from tarscascade.wire.idl.serverf import KEEP_ALIVE, NODE_SERVANT, ServerInfo
from tarscascade.wire.packets import Ret
from tests.integration.security.fleet import SHARED, node_config, registry


async def test_a_registry_beyond_loopback_needs_credentials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(UnsafeListenError, match="without credentials or TLS"):
        await registry(tmp_path, listen=("0.0.0.0", 0)).start()
    caplog.set_level(logging.WARNING, "tarscascade.cli.runtime")
    for kw, warned in (
        ({"insecure": True}, True),
        ({"token": SHARED}, True),
        ({"node_auth": True}, False),
    ):
        caplog.clear()
        rp = registry(tmp_path, listen=("0.0.0.0", 0), **kw)
        await rp.start()
        await rp.aclose()
        said = [r.getMessage() for r in caplog.records if "beyond loopback" in r.getMessage()]
        assert bool(said) is warned, (kw, said)


async def test_a_relay_port_beyond_loopback_needs_credentials(tmp_path: Path) -> None:
    rp = registry(tmp_path)
    await rp.start()
    try:
        for kw in ({"listen": ("0.0.0.0", 0)}, {"relay_listen": ("0.0.0.0", 0)}):
            agent = NodeAgent(node_config("n1", rp, **kw))
            with pytest.raises(UnsafeListenError, match="relay port"):
                await agent.start()
            await agent.aclose()
        # only the business port beyond loopback, the relay port on loopback: fine
        agent = NodeAgent(
            node_config("n1", rp, listen=("0.0.0.0", 0), relay_listen=("127.0.0.1", 0))
        )
        await agent.start()
        await agent.aclose()
    finally:
        await rp.aclose()


async def test_serverf_and_the_cascade_have_their_own_listeners(tmp_path: Path) -> None:
    rp = registry(tmp_path, token=SHARED)
    await rp.start()
    agent = NodeAgent(node_config("n1", rp, token=SHARED, relay_listen=("127.0.0.1", 0)))
    await agent.start()
    try:
        assert agent.relay_port != agent.port
        async with Channel("127.0.0.1", agent.relay_port) as ch:
            with pytest.raises(ServerError) as exc:
                await ch.call(NODE_SERVANT, KEEP_ALIVE, ServerInfo("A", "B", 1, "A.B.C"))
            assert exc.value.code == Ret.NO_SERVANT
            with pytest.raises(ServerError) as exc:
                await ch.call(NODE_SERVANT, FIND_OBJECT_BY_ID, "A.B.C")
            assert exc.value.code == Ret.NO_SERVANT
        async with Channel("127.0.0.1", agent.port) as ch:
            with pytest.raises(ServerError) as exc:
                await ch.call(CASCADE_SERVANT, SUBSCRIBE, SubscribeReq(nodeName="x", token=SHARED))
            assert exc.value.code == Ret.NO_SERVANT
        # the registry registered the node at its relay port (where downstreams go)
        assert rp.core is not None
        core = rp.core
        await eventually(lambda: core.catalog.get_node("n1") is not None)
        assert core.catalog.get_node("n1").port == agent.relay_port  # type: ignore[union-attr]
    finally:
        await agent.aclose()
        await rp.aclose()
