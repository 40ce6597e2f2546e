"""QueryF in TUP 2, TUP 3 and JSON 5 from the real Tars.js packages, registry and node.

``queryf_versions.js`` asks findObjectById4Any: TUP through @tars/rpc's own client
(tars2node-shaped proxy; in version 2 @tars/stream looks each value up by its exact
type name), JSON with @tars/rpc's RequestPacket/ResponsePacket codec over a socket
(@tars/rpc 2.0.15 cannot send version 5 itself). Each answer must equal the TARS one.
The captured request bodies are the vectors in tests/data/vectors (tup2_* files).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import pytest

from tarscascade.wire.idl.queryf import FIND_4ANY, QUERY_SERVANT
from tarscascade.wire.idl.serverf import NODE_SERVANT
from tarscascade.wire.packets import RequestPacket
from tarscascade.wire.struct import decode_struct
from tests.data import vector_bytes
from tests.integration.node.wire_rig import HELLO, PORTS, Rig, rig
from tests.interop.nodeproc import NODE_DIR, node_binary, require_node

__all__ = ["rig"]  # the fixture

pytestmark = pytest.mark.interop

SCRIPT = NODE_DIR / "queryf_versions.js"


def ask(port: int, servant: str, version: int, *extra: str) -> dict[str, Any]:
    node = node_binary()
    assert node is not None
    cmd = [node, str(SCRIPT), "--port", str(port), "--servant", servant, "--id", HELLO]
    cmd += ["--version", str(version), *extra]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=NODE_DIR)
    lines = [ln for ln in cp.stdout.splitlines() if ln.strip()]
    assert lines, f"no output (exit {cp.returncode}): {cp.stderr}"
    out: dict[str, Any] = json.loads(lines[-1])
    return out


def hosts(eps: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return sorted((e["host"], e["port"]) for e in eps)


@pytest.mark.parametrize("version", [2, 3, 5])
@pytest.mark.parametrize("where", ["node", "registry"])
async def test_tars_js_asks_queryf_in_every_version(rig: Rig, where: str, version: int) -> None:
    require_node()
    port = rig.node.port if where == "node" else rig.registry.tars_port
    for servant in (QUERY_SERVANT, NODE_SERVANT):
        r = await asyncio.to_thread(ask, port, servant, version)
        assert r["ok"] is True, r
        assert r["ret"] == 0
        active = [p for p, s in PORTS.items() if s.value == "active"]
        inactive = [p for p, s in PORTS.items() if s.value != "active"]
        assert hosts(r["activeEp"]) == [("127.0.0.1", p) for p in active]
        assert hosts(r["inactiveEp"]) == [("127.0.0.1", p) for p in inactive]
        # every EndpointF field as the TARS answer has it
        want = rig.node.answerer.answer(FIND_4ANY.name, HELLO, "127.0.0.1", "")
        _, act, _ = FIND_4ANY.decode_result(want)
        [got] = r["activeEp"]
        assert got["timeout"] == act[0].timeout
        assert got["istcp"] == act[0].istcp
        assert got["nodeName"] == act[0].nodeName


def test_the_captured_tup2_request_body_decodes() -> None:
    """tup2_findObjectById4Any.request.sbuffer.hex: @tars/stream's UniAttribute v2."""
    body = vector_bytes("tup2_findObjectById4Any.request.sbuffer.hex")
    assert FIND_4ANY.decode_args_tup2(body) == [HELLO]
    # @tars/stream spells the string's type "string"
    assert FIND_4ANY.encode_args_tup2(HELLO) == body


def test_the_captured_json_request_frame_decodes() -> None:
    """json_findObjectById4Any.request.hex: @tars/rpc's RequestPacket with a JSON body."""
    frame = vector_bytes("json_findObjectById4Any.request.hex")
    pkt = decode_struct(RequestPacket, frame[4:])
    assert (pkt.iVersion, pkt.sFuncName) == (5, FIND_4ANY.name)
    assert FIND_4ANY.decode_args_json(pkt.sBuffer) == [HELLO]


async def test_capture_matches_the_vectors(rig: Rig) -> None:
    """The vectors are what the scripts send today (regenerate them if this fails)."""
    require_node()
    port = rig.node.port
    r2 = await asyncio.to_thread(ask, port, QUERY_SERVANT, 2, "--capture")
    assert bytes.fromhex(r2["request"]) == vector_bytes(
        "tup2_findObjectById4Any.request.sbuffer.hex"
    )
    r5 = await asyncio.to_thread(ask, port, QUERY_SERVANT, 5, "--capture")
    assert bytes.fromhex(r5["request"]) == vector_bytes("json_findObjectById4Any.request.hex")
