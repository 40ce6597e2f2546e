"""TLS on the TARS ports and the admin API; mutual TLS as a node's identity (the node
name is its certificate's). Throw-away certificates from ``trustme``."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from tarscascade.cli.runtime import RegistryProcess
from tarscascade.errors import CallTimeoutError, ConnectError, ConnectionClosedError
from tarscascade.model import EndpointRecord, State
from tarscascade.node.app import NodeAgent
from tarscascade.testing import eventually
from tarscascade.transport import Channel, ChannelOptions, TlsConfig
from tarscascade.wire.idl.queryf import FIND_OBJECT_BY_ID, QUERY_SERVANT
from tarscascade.wire.idl.reportf import EndpointStateF, ReportStatesReq
from tests.integration.security.fleet import HELLO, node_config, put, registry, report_on


@dataclass
class Pki:
    ca: Path
    server: TlsConfig
    dir: Path
    authority: trustme.CA

    def node(self, name: str) -> TlsConfig:
        """A client certificate naming ``name`` (its DNS subject-alternative name)."""
        path = self.dir / f"{name}.pem"
        self.authority.issue_cert(name).private_key_and_cert_chain_pem.write_to_path(str(path))
        return TlsConfig(cert=path, key=path, ca=self.ca)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    ca_path, server_path = tmp_path / "ca.pem", tmp_path / "server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_path))
    server = TlsConfig(cert=server_path, key=server_path, ca=ca_path, client_auth=True)
    return Pki(ca_path, server, tmp_path, ca)


@pytest.fixture
async def reg(tmp_path: Path, pki: Pki) -> AsyncIterator[RegistryProcess]:
    """Per-node credentials and mutual TLS: a certificate is an alternative to a secret."""
    rp = registry(tmp_path, node_auth=True, tls=pki.server, http=("127.0.0.1", 0))
    await rp.start()
    try:
        yield rp
    finally:
        await rp.aclose()


async def test_a_node_syncs_and_reports_over_mutual_tls(reg: RegistryProcess, pki: Pki) -> None:
    assert reg.core is not None
    core = reg.core
    rec = EndpointRecord(HELLO, "10.0.0.7", 7000, node_name="n1", present_state=State.INACTIVE)
    await put(core, rec)
    agent = NodeAgent(node_config("n1", reg, tls=pki.node("n1")))  # no secret at all
    await agent.start()
    try:
        assert agent.client is not None
        await eventually(agent.client.synced.is_set, what="synced over mutual TLS")
        assert agent.catalog.get_object(HELLO)
        # its report, over the same kind of channel, is taken as n1's
        ret = await agent.report_upstream(
            ReportStatesReq("n1", "", [EndpointStateF(HELLO, "10.0.0.7", 7000, "active")])
        )
        assert ret == 1
        assert core.catalog.get_object(HELLO)[0].present_state is State.ACTIVE
        # and the admin API is HTTPS (client certificate required)
        async with httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{reg.http_port}",
            verify=pki.node("admin-client").client_context(),
        ) as c:
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await agent.aclose()


async def test_a_certificate_for_another_name_is_refused(reg: RegistryProcess, pki: Pki) -> None:
    assert reg.hub is not None
    hub = reg.hub
    agent = NodeAgent(node_config("n1", reg, tls=pki.node("n2")))
    await agent.start()
    try:
        assert agent.client is not None
        client = agent.client
        await eventually(lambda: client.stats.refused >= 2, what="refused twice")
        assert not client.synced.is_set()
        assert "n1" not in hub.node_states()
        # n2's certificate cannot report for n1 either (and has no proof of n1's)
        ch = Channel(
            "127.0.0.1", reg.tars_port, ChannelOptions(ssl=pki.node("n2").client_context())
        )
        ret, _ = await report_on(ch, ReportStatesReq("n1", "", []))
        assert ret == -1
    finally:
        await agent.aclose()


async def test_plain_tcp_to_a_tls_port_is_refused_cleanly(reg: RegistryProcess, pki: Pki) -> None:
    assert reg.tars is not None
    requests = reg.tars.stats["requests"]
    plain = Channel("127.0.0.1", reg.tars_port, ChannelOptions(call_timeout=5.0))
    with pytest.raises((ConnectionClosedError, CallTimeoutError, ConnectError)):
        await plain.call(QUERY_SERVANT, FIND_OBJECT_BY_ID, HELLO)
    await plain.aclose()
    # TLS without a client certificate: the handshake is refused
    no_cert = TlsConfig(ca=pki.ca).client_context()
    anonymous = Channel("127.0.0.1", reg.tars_port, ChannelOptions(ssl=no_cert, call_timeout=5.0))
    with pytest.raises((ConnectionClosedError, CallTimeoutError, ConnectError)):
        await anonymous.call(QUERY_SERVANT, FIND_OBJECT_BY_ID, HELLO)
    await anonymous.aclose()
    assert reg.tars.stats["requests"] == requests  # no byte of theirs read as a request
    # the port still serves TLS clients
    good = Channel("127.0.0.1", reg.tars_port, ChannelOptions(ssl=pki.node("n9").client_context()))
    try:
        assert await good.call(QUERY_SERVANT, FIND_OBJECT_BY_ID, HELLO) == ([],)
    finally:
        await good.aclose()


async def test_the_node_status_api_over_https(tmp_path: Path, pki: Pki) -> None:
    """``agent --http-tls``: the node's HTTP API answers over HTTPS with its certificate,
    and a plain HTTP request to it gets no answer."""
    from tarscascade.cli.runtime import NodeProcess
    from tarscascade.node.config import NodeConfig

    rp = registry(tmp_path)
    await rp.start()
    try:
        cert = pki.node("127.0.0.1")
        assert cert.cert is not None
        upstreams = [("127.0.0.1", rp.tars_port)]
        config = NodeConfig(name="n1", upstreams=upstreams, listen=("127.0.0.1", 0))
        https = TlsConfig(cert=cert.cert, key=cert.key)
        trust = ssl.create_default_context(cafile=str(pki.ca))
        async with (
            NodeProcess(config, ("127.0.0.1", 0), http_tls=https) as np,
            httpx.AsyncClient(verify=trust) as client,
        ):
            r = await client.get(f"https://127.0.0.1:{np.http_port}/status")
            assert r.status_code == 200, r.text
            assert r.json()["node"] == "n1"
            with pytest.raises(httpx.HTTPError):
                await client.get(f"http://127.0.0.1:{np.http_port}/status")
    finally:
        await rp.aclose()


def test_http_tls_without_a_certificate_is_a_usage_error() -> None:
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "tarscascade.cli", "agent", "--name", "n1", "--http-tls"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "--http-tls needs --tls-cert" in p.stderr
