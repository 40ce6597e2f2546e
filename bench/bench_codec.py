"""Codec: decode + re-encode of 100,000 EndpointF with every field set.

Target (issue 2): < 1 s for decode + re-encode of 100,000 EndpointF on this machine.
"""

from __future__ import annotations

import time

from bench.common import cli, median, verdict
from tarscascade.wire.codec import decode_value, encode_value
from tarscascade.wire.idl.endpointf import ENDPOINT_LIST, EndpointF
from tarscascade.wire.packets import RequestPacket
from tarscascade.wire.struct import decode_struct, encode_struct


def endpoints(n: int) -> list[EndpointF]:
    return [
        EndpointF(
            host=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            port=10000 + i % 50000,
            timeout=60000,
            istcp=1,
            grid=1,
            groupworkid=3,
            grouprealid=3,
            setId="app.sz.1",
            qos=46,
            bakFlag=0,
            weight=100,
            weightType=1,
            authType=1,
            nodeName=f"node-{i}.example",
        )
        for i in range(n)
    ]


def run(quick: bool) -> dict[str, object]:
    n = 20_000 if quick else 100_000
    runs = 3 if quick else 7
    eps = endpoints(n)
    data = encode_value(ENDPOINT_LIST, eps)
    dec, enc, both = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        back = decode_value(ENDPOINT_LIST, data)
        t1 = time.perf_counter()
        again = encode_value(ENDPOINT_LIST, back)
        t2 = time.perf_counter()
        assert again == data
        assert back == eps
        dec.append(t1 - t0)
        enc.append(t2 - t1)
        both.append(t2 - t0)
    scale = 100_000 / n
    per_100k = median(both) * scale
    pkt = RequestPacket(
        iVersion=1,
        iRequestId=12345,
        sServantName="tars.tarsregistry.QueryObj",
        sFuncName="findObjectByIdInSameGroup",
        sBuffer=b"\x16\x19Test.HelloServer.HelloObj",
        iTimeout=3000,
        context={"node_name": "192.0.2.2"},
    )
    raw = encode_struct(pkt)
    m = 20_000 if quick else 100_000
    t0 = time.perf_counter()
    for _ in range(m):
        decode_struct(RequestPacket, raw)
    t_req = time.perf_counter() - t0
    return {
        "endpoints": n,
        "encoded_bytes": len(data),
        "runs": runs,
        "decode_s_median": median(dec),
        "encode_s_median": median(enc),
        "decode_plus_encode_s_median": median(both),
        "decode_plus_encode_per_100k_s": per_100k,
        "target": verdict(per_100k, 1.0),
        "request_packet_decodes_per_s": m / t_req,
    }


def main(argv: list[str] | None = None) -> int:
    return cli("codec", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
