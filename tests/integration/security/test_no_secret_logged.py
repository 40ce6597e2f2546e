"""No secret is ever logged: a whole per-node fleet (a relay, a leaf, reports, refusals,
wrong and misdirected secrets, a revocation) runs with every logger at DEBUG, and no
record's message, arguments or traceback holds a secret or a token."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tarscascade.model import EndpointRecord, State
from tarscascade.node.app import NodeAgent
from tarscascade.testing import eventually
from tarscascade.transport import Channel
from tarscascade.wire.idl.reportf import EndpointStateF, ReportStatesReq
from tarscascade.wire.idl.serverf import KEEP_ALIVE, NODE_SERVANT, ServerInfo
from tests.integration.security.fleet import HELLO, node_config, put, registry, report

ADMIN = "admin-token-never-logged"


def _texts(records: list[logging.LogRecord]) -> str:
    out = []
    for r in records:
        out.append(r.getMessage())
        out.append(repr(r.args))
        if r.exc_info:
            out.append(logging.Formatter().formatException(r.exc_info))
    return "\n".join(out)


async def test_no_secret_in_any_log_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rp = registry(tmp_path, node_auth=True, token=ADMIN, http=("127.0.0.1", 0))
    await rp.start()
    secrets: list[str] = [ADMIN]
    try:
        assert rp.authority is not None
        assert rp.core is not None
        core = rp.core
        relay_secret, leaf_secret = (
            await rp.authority.issue("relay-1"),
            await rp.authority.issue("leaf"),
        )
        secrets += [relay_secret, leaf_secret]
        await put(
            core,
            EndpointRecord(
                HELLO, "127.0.0.1", 7300, node_name="leaf", present_state=State.INACTIVE
            ),
        )
        relay = NodeAgent(node_config("relay-1", rp, token=relay_secret))
        await relay.start()
        up = ("127.0.0.1", relay.relay_port)
        leaf = NodeAgent(
            node_config("leaf", rp, token=leaf_secret, upstreams=[up], relays={up: "relay-1"})
        )
        misdirected = NodeAgent(node_config("leaf-2", rp, token=leaf_secret, upstreams=[up]))
        try:
            await leaf.start()
            await misdirected.start()
            assert leaf.client is not None
            assert misdirected.client is not None
            client = misdirected.client
            await eventually(lambda: client.stats.refused >= 1)
            await eventually(lambda: bool(leaf.catalog.get_object(HELLO)))
            async with Channel("127.0.0.1", leaf.port) as ch:
                await ch.call(
                    NODE_SERVANT, KEEP_ALIVE, ServerInfo("Test", "HelloServer", os.getpid(), HELLO)
                )
            await eventually(
                lambda: core.catalog.get_object(HELLO)[0].present_state is State.ACTIVE
            )
            # wrong credentials of every kind
            flip = [EndpointStateF(HELLO, "127.0.0.1", 7300, "inactive")]
            await report(rp.tars_port, ReportStatesReq("leaf", relay_secret, flip))
            await report(rp.tars_port, ReportStatesReq("leaf", ADMIN, flip))
            assert await rp.authority.revoke("relay-1")
            await eventually(lambda: relay.client is not None and relay.client.stats.refused >= 1)
        finally:
            await misdirected.aclose()
            await leaf.aclose()
            await relay.aclose()
    finally:
        await rp.aclose()
    text = _texts(caplog.records)
    assert len(caplog.records) > 5  # the scenario did log (refusals, warnings)
    for s in secrets:
        assert s not in text
        assert s[-20:] not in text  # nor a part of one
