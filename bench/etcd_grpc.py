"""etcd through its native v3 gRPC API, as Kubernetes' apiserver talks to it.

* :class:`Etcd`: a one-member etcd 3.4 on loopback with a temporary data dir (the server
  side of ``bench.bench_etcd``); ``target`` is its gRPC address, ``url`` the same port as
  a URL (etcd serves gRPC and HTTP on one client port).
* :class:`EtcdClient`: the benchmark process's synchronous client (one channel, so one
  HTTP/2 connection): timed single puts, bulk loads in transactions, prefix listings.
* :func:`etcd_key` / :func:`etcd_value`: how an endpoint is stored, one key per endpoint
  holding its fields as JSON (one small object per item, as Kubernetes stores objects).

The consumers (informers) are in ``bench.etcd_watchers``, on ``grpc.aio``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from bench.common import free_port
from bench.etcdpb import rpc_pb2, rpc_pb2_grpc
from tarscascade.cascade.payload import encode_records
from tarscascade.model import EndpointRecord

if TYPE_CHECKING:
    from bench.bench_cascade import Watchdog

PREFIX = "/tars/objects/"
#: puts per transaction in :meth:`EtcdClient.put_many` (etcd's --max-txn-ops is 128)
TXN_OPS = 100
#: a whole-prefix Range can outgrow gRPC's default 4 MiB receive limit; etcd 3.4 sends up
#: to 2 GiB, so the client side is what would refuse a large listing
CHANNEL_OPTIONS: list[tuple[str, int]] = [("grpc.max_receive_message_length", 256 * 2**20)]


def etcd_key(rec: EndpointRecord) -> str:
    return f"{PREFIX}{rec.object_id}/{rec.host}:{rec.port}"


def etcd_value(rec: EndpointRecord) -> bytes:
    """The endpoint as the same compact JSON row a cascade payload carries for it (a
    positional array, no field names), so both systems move the same bytes of data:
    raw, gRPC carries bytes (no base64)."""
    return encode_records([rec])


def prefix_end(prefix: str) -> bytes:
    """The range_end that selects every key starting with ``prefix`` (last byte + 1)."""
    raw = prefix.encode()
    if not raw or raw[-1] == 0xFF:
        raise ValueError(f"no simple range end for prefix {prefix!r}")
    return raw[:-1] + bytes([raw[-1] + 1])


class EtcdClient:
    """A synchronous etcd v3 client on one gRPC channel (one TCP connection)."""

    def __init__(self, target: str, timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout  # per call
        self.channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.kv = rpc_pb2_grpc.KVStub(self.channel)

    def put(self, key: str, value: bytes) -> tuple[int, float, float]:
        """One put: ``(revision, t_issued, t_acknowledged)``, ``time.time()`` just before
        the call and right after its response."""
        req = rpc_pb2.PutRequest(key=key.encode(), value=value)
        t0 = time.time()
        resp = self.kv.Put(req, timeout=self.timeout)
        t1 = time.time()
        return int(resp.header.revision), t0, t1

    def put_many(self, items: list[tuple[str, bytes]]) -> int:
        """Puts in transactions of at most :data:`TXN_OPS` (no compare: they always run);
        the revision of the last one (0 when ``items`` is empty)."""
        rev = 0
        for i in range(0, len(items), TXN_OPS):
            ops = [
                rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=k.encode(), value=v))
                for k, v in items[i : i + TXN_OPS]
            ]
            resp = self.kv.Txn(rpc_pb2.TxnRequest(success=ops), timeout=self.timeout)
            if not resp.succeeded:
                raise RuntimeError("etcd txn without compares did not succeed")
            rev = int(resp.header.revision)
        return rev

    def range_prefix(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        """Every key under ``prefix`` -> its value, with the store's revision (linearizable)."""
        req = rpc_pb2.RangeRequest(key=prefix.encode(), range_end=prefix_end(prefix))
        resp = self.kv.Range(req, timeout=self.timeout)
        return int(resp.header.revision), {kv.key.decode(): kv.value for kv in resp.kvs}

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Etcd:
    """A one-member etcd on loopback with its data (and log) in a temporary directory.

    ``target`` (``127.0.0.1:<client port>``) is the gRPC address, ``url`` the same port
    over HTTP. Each child is registered with ``dog`` (when given) so a benchmark's time
    budget can kill it.
    """

    def __init__(self, exe: str, tmp: str, name: str, dog: Watchdog | None = None) -> None:
        data = Path(tmp) / f"etcd-{name}"
        self.log = Path(tmp) / f"etcd-{name}.log"
        last = ""
        for _ in range(3):  # a free port can be taken between probing and etcd binding it
            client, peer = free_port(), free_port()
            self.target = f"127.0.0.1:{client}"
            self.url = f"http://{self.target}"
            peer_url = f"http://127.0.0.1:{peer}"
            shutil.rmtree(data, ignore_errors=True)
            cmd = [exe, "--name", "bench", "--data-dir", str(data)]
            cmd += ["--listen-client-urls", self.url, "--advertise-client-urls", self.url]
            cmd += ["--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url]
            cmd += ["--initial-cluster", f"bench={peer_url}", "--logger", "zap"]
            cmd += ["--log-outputs", "stderr", "--log-level", "warn"]
            with open(self.log, "ab") as log:
                self.p = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            if dog is not None:
                dog.add(self.p)
            try:
                self._wait_ready(20.0)
                return
            except RuntimeError as e:
                last = str(e)
                self.stop()
        raise RuntimeError(f"etcd did not start: {last}; see {self.log}")

    def _wait_ready(self, timeout: float) -> None:
        """Until a linearizable gRPC Range answers: that needs the member elected leader,
        so the measured path itself is up (not just the HTTP listener)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"exited with {self.p.returncode}")
            # a fresh channel per probe: a channel that failed to connect backs off (1 s+)
            with EtcdClient(self.target, timeout=1.0) as c:
                try:
                    c.kv.Range(rpc_pb2.RangeRequest(key=b"health"), timeout=1.0)
                    return
                except grpc.RpcError as e:
                    last = f"{e.code()}: {e.details()}"
            time.sleep(0.1)
        raise RuntimeError(f"not ready after {timeout} s ({last})")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
