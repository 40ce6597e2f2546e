"""Idle and hostile connections cannot lock real peers out (review E1).

Before: connections were never closed for idleness and there was no per-peer limit, so
idle sockets (10,000 in the review; scaled down here) filled every slot and a real node
could no longer subscribe. Every socket also gets TCP keepalive and a user timeout, so
a peer that vanished without FIN/RST is found by the kernel.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from tarscascade.testing import eventually
from tarscascade.transport import Channel, RawServant, ServerOptions, TarsServer
from tarscascade.transport.sockopts import DEFAULT_KEEPALIVE

SERVANT = "Test.Limits.Obj"


async def open_idle(port: int, source: str, n: int) -> list[socket.socket]:
    """``n`` connections from ``source`` that never send a byte."""
    socks = []
    loop = asyncio.get_running_loop()
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.bind((source, 0))
        try:
            await loop.sock_connect(s, ("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


async def test_idle_sockets_from_one_address_cannot_lock_others_out() -> None:
    opts = ServerOptions(
        max_connections=60,
        max_connections_per_ip=20,
        first_request_timeout=0.5,
        sweep_interval=0.05,
    )
    async with TarsServer([RawServant(SERVANT, {})], options=opts) as server:
        # one host (127.0.0.2) opens far more idle connections than it may hold
        idle = await open_idle(server.port, "127.0.0.2", 100)
        try:
            await eventually(lambda: server.stats["refused_per_ip"] >= 1, timeout=10)
            assert server.connections_from("127.0.0.2") <= 20
            # a real peer on another address still gets in and is answered at once
            async with Channel("127.0.0.1", server.port) as ch:
                await ch.ping(SERVANT)
                # the idle ones never sent a request: they are closed, the real one stays
                await eventually(lambda: server.connections_from("127.0.0.2") == 0, timeout=10)
                assert server.stats["idle_closed"] >= 1
                await ch.ping(SERVANT)
                assert server.connection_count == 1
        finally:
            for s in idle:
                s.close()


async def test_accepted_and_connected_sockets_have_keepalive() -> None:
    server = TarsServer([RawServant(SERVANT, {})])
    async with server, Channel("127.0.0.1", server.port) as ch:
        await ch.ping(SERVANT)
        (conn,) = list(server._conns)
        assert conn.transport is not None
        assert ch._proto is not None
        assert ch._proto.transport is not None
        client_sock = ch._proto.transport.get_extra_info("socket")
        for sock in (conn.transport.get_extra_info("socket"), client_sock):
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert (
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == DEFAULT_KEEPALIVE.idle
            )
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == int(
                DEFAULT_KEEPALIVE.user_timeout * 1000
            )


async def test_refusals_are_logged_once_not_per_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    opts = ServerOptions(max_connections_per_ip=2, first_request_timeout=None)
    async with TarsServer([RawServant(SERVANT, {})], options=opts) as server:
        with caplog.at_level(logging.WARNING, logger="tarscascade.transport.server"):
            idle = await open_idle(server.port, "127.0.0.3", 30)
            try:
                await eventually(lambda: server.stats["refused_per_ip"] >= 10, timeout=10)
            finally:
                for s in idle:
                    s.close()
        warnings = [r for r in caplog.records if "refusing" in r.getMessage()]
        assert len(warnings) == 1
