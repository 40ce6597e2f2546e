"""A loopback peer's budget key is its owner's uid (Linux), so local users get a pool each."""

from __future__ import annotations

import os
import sys

import pytest

from tarscascade.transport import Channel, Current, RawServant, TarsServer
from tarscascade.wire.packets import Ret


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/net/tcp is Linux's")
async def test_a_local_peer_is_keyed_by_its_uid() -> None:
    seen: list[str] = []

    def who(current: Current, _body: bytes) -> tuple[int, bytes, str]:
        seen.append(current.conn.peer_key)  # type: ignore[attr-defined]
        return (Ret.SUCCESS, b"", "")

    server = TarsServer([RawServant("A.B.WhoObj", {"who": who})])
    async with server, Channel("127.0.0.1", server.port) as ch:
        await ch.invoke("A.B.WhoObj", "who", b"")
    assert seen == [f"uid:{os.getuid()}"]
