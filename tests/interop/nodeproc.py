"""Helpers that run the real TARS Node.js implementation (npm ``@tars/*``) from tests.

The node scripts live in ``tests/interop/node`` (``make node`` runs ``npm ci`` there):

* ``codec_tool.js``: JSON-lines encode/decode service over @tars/stream, see :class:`CodecTool`.
* ``rpc_server.js``: a @tars/rpc servant (hello/add/sleep/fail), see :class:`NodeProc`.
* ``rpc_client.js``: a @tars/rpc client making calls, see :func:`run_client`.

Every wait is bounded and every process started here is stopped (``finally``) by the
context manager or function that started it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from tarscascade.wire import codec
from tarscascade.wire.codec import Kind
from tarscascade.wire.idl.endpointf import ENDPOINT_F, EndpointF

NODE_DIR = Path(__file__).resolve().parent / "node"
CODEC_TOOL = NODE_DIR / "codec_tool.js"
RPC_SERVER = NODE_DIR / "rpc_server.js"
RPC_CLIENT = NODE_DIR / "rpc_client.js"

#: The packages the scripts need (pinned in node/package.json).
NODE_PACKAGES = ("@tars/stream", "@tars/rpc", "@tars/registry")

DEFAULT_READY_TIMEOUT = 20.0
DEFAULT_STOP_TIMEOUT = 5.0
DEFAULT_CODEC_TIMEOUT = 10.0


class NodeError(RuntimeError):
    """A node script failed to start, answered with an error, or misbehaved."""


# ---------------------------------------------------------------- availability


def node_binary() -> str | None:
    return shutil.which("node")


def node_skip_reason() -> str | None:
    """Why the interop tests cannot run here, or None when they can."""
    if node_binary() is None:
        return "node is not installed (the interop tests need Node.js; see Makefile `node`)"
    missing = [p for p in NODE_PACKAGES if not (NODE_DIR / "node_modules" / p).is_dir()]
    if missing:
        return (
            f"{', '.join(missing)} missing in {NODE_DIR}/node_modules "
            "(run `make node`, i.e. `npm ci` in tests/interop/node)"
        )
    return None


def node_available() -> bool:
    return node_skip_reason() is None


def require_node() -> None:
    """Skip the calling test when node is missing; fail instead under CI, which installs it."""
    reason = node_skip_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"interop prerequisites missing under CI: {reason}")
    pytest.skip(reason)


# ---------------------------------------------------------------- processes


class _LineReader:
    """Drains a text stream on a daemon thread into a queue (so pipes never fill up)."""

    def __init__(self, stream: IO[str], name: str) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(stream,), name=name, daemon=True)
        self._thread.start()

    def _run(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                line = line.rstrip("\n")
                with self._lock:
                    self.seen.append(line)
                self.lines.put(line)
        except (OSError, ValueError):  # closed underneath us while stopping
            pass
        finally:
            self.lines.put(None)

    def get(self, deadline: float) -> str | None:
        """The next line; None at EOF. Raises TimeoutError past ``deadline`` (monotonic)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        try:
            line = self.lines.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            self.lines.put(None)  # keep reporting EOF
        return line

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.seen)

    def text(self) -> str:
        return "\n".join(self.snapshot())

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _node_cmd(script: Path, args: Sequence[str]) -> list[str]:
    node = node_binary()
    if node is None:
        raise NodeError("node is not installed")
    return [node, str(script), *args]


class NodeProc:
    """A long-running node script that prints ``READY <port>`` once it listens.

    Use as a context manager (or call :meth:`start` / :meth:`stop`)::

        with NodeProc(RPC_SERVER, ["--servant", "Test.HelloServer.HelloObj"]) as srv:
            run_client(["--obj", f"Test.HelloServer.HelloObj@tcp -h 127.0.0.1 -p {srv.port}", ...])

    Lines the script prints after READY are collected; :meth:`wait_for_line` waits for one.
    """

    def __init__(
        self,
        script: Path | str,
        args: Sequence[str] = (),
        *,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.script = Path(script)
        self.args = list(args)
        self.ready_timeout = ready_timeout
        self.env = dict(env) if env is not None else None
        self.port: int = 0
        self.proc: subprocess.Popen[str] | None = None
        self._out: _LineReader | None = None
        self._err: _LineReader | None = None

    # -- lifecycle

    def start(self) -> NodeProc:
        if self.proc is not None:
            raise NodeError("already started")
        env = None if self.env is None else {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            _node_cmd(self.script, self.args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=NODE_DIR,
            env=env,
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._out = _LineReader(self.proc.stdout, f"{self.script.name}-stdout")
        self._err = _LineReader(self.proc.stderr, f"{self.script.name}-stderr")
        try:
            line = self.wait_for_line("READY ", self.ready_timeout, what="READY <port>")
            self.port = int(line.split()[1])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> int | None:
        """Stop the process (stdin close + SIGTERM, then SIGKILL); returns its exit code."""
        proc = self.proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    if proc.stdin:
                        proc.stdin.close()
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        finally:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    if stream:
                        stream.close()
            for reader in (self._out, self._err):
                if reader:
                    reader.join(timeout)
        return proc.returncode

    def __enter__(self) -> NodeProc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- output

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stdout_lines(self) -> list[str]:
        """Every stdout line printed so far (READY included)."""
        return self._out.snapshot() if self._out else []

    def stderr_text(self) -> str:
        return self._err.text() if self._err else ""

    def wait_for_line(self, prefix: str, timeout: float, *, what: str | None = None) -> str:
        """Wait (bounded) for the next stdout line starting with ``prefix`` and return it.

        Lines are consumed in order: earlier non-matching lines are skipped for good.
        """
        if self._out is None:
            raise NodeError("not started")
        deadline = time.monotonic() + timeout
        what = what or repr(prefix)
        while True:
            try:
                line = self._out.get(deadline)
            except TimeoutError:
                raise NodeError(
                    f"{self.script.name}: no {what} line within {timeout:g}s; "
                    f"stdout={self._out.text()!r} stderr={self.stderr_text()!r}"
                ) from None
            if line is None:
                code = self.proc.wait(DEFAULT_STOP_TIMEOUT) if self.proc else None
                raise NodeError(
                    f"{self.script.name} exited (code {code}) before printing {what}; "
                    f"stdout={self._out.text()!r} stderr={self.stderr_text()!r}"
                )
            if line.startswith(prefix):
                return line

    def wait_for_request(
        self,
        predicate: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Wait (bounded) for the next rpc_server.js ``REQ {json}`` line matching ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.wait_for_line("REQ ", max(deadline - time.monotonic(), 0.001), what="REQ")
            req: dict[str, Any] = json.loads(line[4:])
            if predicate(req):
                return req

    def requests(self) -> list[dict[str, Any]]:
        """The ``REQ {json}`` lines rpc_server.js has printed so far, decoded."""
        return [json.loads(x[4:]) for x in self.stdout_lines() if x.startswith("REQ ")]


@contextlib.contextmanager
def node_server(
    args: Sequence[str] = (), *, ready_timeout: float = DEFAULT_READY_TIMEOUT
) -> Iterator[NodeProc]:
    """Run ``rpc_server.js`` with ``args``; yields the started :class:`NodeProc`."""
    proc = NodeProc(RPC_SERVER, args, ready_timeout=ready_timeout)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@dataclasses.dataclass
class ClientRun:
    results: list[dict[str, Any]]
    returncode: int
    stderr: str


def run_client_full(args: Sequence[str], timeout: float = 30.0) -> ClientRun:
    """Run ``rpc_client.js`` to completion (killed past ``timeout`` seconds)."""
    try:
        cp = subprocess.run(
            _node_cmd(RPC_CLIENT, args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=NODE_DIR,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed and reaped it
        raise NodeError(
            f"rpc_client.js did not finish within {timeout:g}s: {exc.stdout!r}"
        ) from exc
    results = []
    for line in cp.stdout.splitlines():
        if line.startswith("{"):
            results.append(json.loads(line))
    if cp.returncode not in (0, 1) or not results:
        raise NodeError(
            f"rpc_client.js failed (exit {cp.returncode}): "
            f"stdout={cp.stdout!r} stderr={cp.stderr!r}"
        )
    return ClientRun(results, cp.returncode, cp.stderr)


def run_client(args: Sequence[str], timeout: float = 30.0) -> list[dict[str, Any]]:
    """Run ``rpc_client.js``; one dict per call: ``{"call","ok","ret"|"code","error",...}``."""
    return run_client_full(args, timeout).results


# ---------------------------------------------------------------- the codec tool

# Type strings understood by codec_tool.js, mapped to Python kinds. "RegistryEndpointF" is
# @tars/registry's bundled (older, tags 0-12) EndpointF; Python reads it with EndpointF.
_SIMPLE_KINDS: dict[str, Kind[Any]] = {
    "int8": codec.INT8,
    "int16": codec.INT16,
    "int32": codec.INT32_K,
    "int64": codec.INT64_K,
    "uint8": codec.UINT8,
    "uint16": codec.UINT16,
    "uint32": codec.UINT32,
    "bool": codec.BOOL,
    "float": codec.FLOAT_K,
    "double": codec.DOUBLE_K,
    "string": codec.STRING,
    "bytes": codec.BYTES,
    "EndpointF": ENDPOINT_F,
    "RegistryEndpointF": ENDPOINT_F,
}
_BIG = ("int64", "uint32")  # travel as decimal strings in JSON
_REGISTRY_ENDPOINTF_FIELDS = (
    "host",
    "port",
    "timeout",
    "istcp",
    "grid",
    "groupworkid",
    "grouprealid",
    "setId",
    "qos",
    "bakFlag",
    "weight",
    "weightType",
)


def _split_type(t: str) -> tuple[str, list[str]]:
    """``"map<string,list<int32>>"`` -> ``("map", ["string", "list<int32>"])``."""
    t = t.strip()
    if "<" not in t:
        return t, []
    if not t.endswith(">"):
        raise ValueError(f"bad type {t!r}")
    head, inner = t[: t.index("<")], t[t.index("<") + 1 : -1]
    parts, depth, start = [], 0, 0
    for i, c in enumerate(inner):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return head, parts


def py_kind(t: str) -> Kind[Any]:
    """The Python codec kind for a codec_tool type string."""
    head, params = _split_type(t)
    if head in ("list", "vector") and len(params) == 1:
        return codec.list_of(py_kind(params[0]))
    if head == "map" and len(params) == 2:
        return codec.map_of(py_kind(params[0]), py_kind(params[1]))
    if not params and head in _SIMPLE_KINDS:
        return _SIMPLE_KINDS[head]
    raise ValueError(f"unknown type {t!r}")


def _float_to_json(v: float) -> float | str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0 and math.copysign(1.0, v) < 0:
        return "-0"
    return v


def to_json(t: str, value: Any) -> Any:
    """A Python value of type ``t`` as codec_tool.js expects it in JSON."""
    head, params = _split_type(t)
    if head in ("list", "vector"):
        return [to_json(params[0], x) for x in value]
    if head == "map":
        return [[to_json(params[0], k), to_json(params[1], v)] for k, v in value.items()]
    if head in _BIG:
        return str(value)
    if head in ("float", "double"):
        return _float_to_json(float(value))
    if head == "bytes":
        return bytes(value).hex()
    if head == "EndpointF":
        return dataclasses.asdict(value)
    if head == "RegistryEndpointF":
        return {k: getattr(value, k) for k in _REGISTRY_ENDPOINTF_FIELDS}
    return value


def from_json(t: str, value: Any) -> Any:
    """The Python value for codec_tool.js's JSON rendering of a value of type ``t``."""
    head, params = _split_type(t)
    if head in ("list", "vector"):
        return [from_json(params[0], x) for x in value]
    if head == "map":
        return {from_json(params[0], k): from_json(params[1], v) for k, v in value}
    if head in _BIG:
        return int(value)
    if head in ("float", "double"):
        return float(value)
    if head == "bytes":
        return bytes.fromhex(value)
    if head in ("EndpointF", "RegistryEndpointF"):
        return EndpointF(**value)
    return value


FieldSpec = tuple[int, str] | tuple[int, str, Any] | Mapping[str, Any]


def _field(f: FieldSpec) -> tuple[int, str, Any]:
    if isinstance(f, Mapping):
        return int(f["tag"]), str(f["type"]), f.get("value")
    if len(f) == 2:
        return int(f[0]), str(f[1]), None
    return int(f[0]), str(f[1]), f[2]


def py_encode(fields: Sequence[FieldSpec]) -> bytes:
    """Encode ``(tag, type, value)`` fields with the Python codec, in the order given."""
    out = bytearray()
    for tag, t, value in map(_field, fields):
        out += codec.encode_value(py_kind(t), value, tag)
    return bytes(out)


def py_decode(data: bytes, fields: Sequence[FieldSpec]) -> list[Any]:
    """Decode the ``(tag, type)`` fields from ``data`` with the Python codec."""
    return [codec.decode_value(py_kind(t), data, tag) for tag, t, _ in map(_field, fields)]


class CodecTool:
    """``codec_tool.js`` as a context manager: encode/decode with the real @tars/stream.

    ``fields`` are ``(tag, type, value)`` tuples (``(tag, type)`` for decode) or dicts with
    those keys; values are Python values (ints, str, bytes, lists, dicts, EndpointF).
    """

    def __init__(self, *, timeout: float = DEFAULT_CODEC_TIMEOUT) -> None:
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None
        self._out: _LineReader | None = None
        self._err: _LineReader | None = None

    def __enter__(self) -> CodecTool:
        self.proc = subprocess.Popen(
            _node_cmd(CODEC_TOOL, []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=NODE_DIR,
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._out = _LineReader(self.proc.stdout, "codec_tool-stdout")
        self._err = _LineReader(self.proc.stderr, "codec_tool-stderr")
        try:
            if self.request({"op": "ping"}) != {"ok": True}:
                raise NodeError("codec_tool.js did not answer ping")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        proc = self.proc
        if proc is None:
            return
        try:
            with contextlib.suppress(OSError):
                if proc.stdin:
                    proc.stdin.close()  # the tool exits when stdin closes
            try:
                proc.wait(DEFAULT_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(DEFAULT_STOP_TIMEOUT)
        finally:
            for stream in (proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    if stream:
                        stream.close()
            for reader in (self._out, self._err):
                if reader:
                    reader.join(DEFAULT_STOP_TIMEOUT)
            self.proc = None

    def request(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Send one raw request and return the raw answer (bounded wait)."""
        if self.proc is None or self.proc.stdin is None or self._out is None:
            raise NodeError("codec tool is not running")
        try:
            self.proc.stdin.write(json.dumps(obj, allow_nan=False) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise NodeError(f"codec_tool.js is gone: {self._stderr()}") from exc
        try:
            line = self._out.get(time.monotonic() + self.timeout)
        except TimeoutError:
            raise NodeError(f"codec_tool.js did not answer within {self.timeout:g}s") from None
        if line is None:
            raise NodeError(f"codec_tool.js exited: {self._stderr()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _stderr(self) -> str:
        return self._err.text() if self._err else ""

    def encode(self, fields: Sequence[FieldSpec]) -> bytes:
        """Encode fields with @tars/stream; raises NodeError when it refuses."""
        req = [{"tag": tag, "type": t, "value": to_json(t, v)} for tag, t, v in map(_field, fields)]
        answer = self.request({"op": "encode", "fields": req})
        if "error" in answer:
            raise NodeError(f"@tars/stream encode failed: {answer['error']}")
        return bytes.fromhex(answer["hex"])

    def decode(self, data: bytes | str, fields: Sequence[FieldSpec]) -> list[Any]:
        """Decode fields from ``data`` (bytes or hex) with @tars/stream."""
        hexdata = data if isinstance(data, str) else bytes(data).hex()
        specs = [_field(f) for f in fields]
        req = [{"tag": tag, "type": t} for tag, t, _ in specs]
        answer = self.request({"op": "decode", "hex": hexdata, "fields": req})
        if "error" in answer:
            raise NodeError(f"@tars/stream decode failed: {answer['error']}")
        return [from_json(t, v) for (_, t, _), v in zip(specs, answer["values"], strict=True)]
