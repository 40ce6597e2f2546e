"""Smoke tests of the node harness itself: rpc_client.js calling rpc_server.js node-to-node.

These prove the scripts (and the @tars/rpc behaviour the Python tests rely on) work
before any Python server or client joins in.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.nodeproc import (
    RPC_SERVER,
    NodeError,
    NodeProc,
    node_server,
    require_node,
    run_client,
    run_client_full,
)

pytestmark = pytest.mark.interop

OBJ = "Test.HelloServer.HelloObj"
QUERY_OBJ = "tars.tarsregistry.QueryObj"


def direct(port: int) -> str:
    return f"{OBJ}@tcp -h 127.0.0.1 -p {port}"


@pytest.fixture(scope="module")
def server() -> Iterator[NodeProc]:
    require_node()
    with node_server(["--servant", OBJ]) as srv:
        yield srv


def call(port: int, func: str, args: str = "[]", *extra: str) -> list[dict[str, object]]:
    return run_client(["--obj", direct(port), "--func", func, "--args", args, *extra], timeout=30)


def test_server_reports_a_real_port(server: NodeProc) -> None:
    assert 0 < server.port < 65536
    assert server.stdout_lines()[0] == f"READY {server.port}"
    assert server.returncode is None


def test_hello(server: NodeProc) -> None:
    [r] = call(server.port, "hello", '["world"]')
    assert r["ok"] is True, r
    assert r["ret"] == "hello world"
    assert r["endpoint"] == f"tcp -h 127.0.0.1 -p {server.port} -t 0"
    req = server.wait_for_request(lambda q: q["sBuffer"] == "1605" + b"world".hex())
    assert req["func"] == "hello"
    assert req["servant"] == OBJ
    assert req["iVersion"] == 1
    assert req["cPacketType"] == 0
    assert req["iRequestId"] == 2  # @tars/rpc's per-proxy counter starts at 1, pre-incremented
    assert req["iTimeout"] == 3000
    assert req["context"] == {}
    assert req["status"] == {}


def test_add_and_sequential_request_ids(server: NodeProc) -> None:
    results = call(server.port, "add", "[40, 2]", "--calls", "3")
    assert [r["ret"] for r in results] == [42, 42, 42]
    assert [r["call"] for r in results] == [0, 1, 2]
    ids = [server.wait_for_request(lambda q: q["func"] == "add")["iRequestId"] for _ in range(3)]
    assert ids == [2, 3, 4]
    [r] = call(server.port, "add", "[-7, 3]")
    assert r["ret"] == -4


def test_parallel_calls_with_context(server: NodeProc) -> None:
    results = call(
        server.port, "hello", '["p"]', "--calls", "5", "--parallel", "--context", '{"k":"v"}'
    )
    assert [r["ret"] for r in results] == ["hello p"] * 5
    req = server.wait_for_request(lambda q: q["context"] == {"k": "v"})
    assert req["func"] == "hello"


def test_server_does_not_check_the_servant_name(server: NodeProc) -> None:
    # @tars/rpc's BindAdapter dispatches every request on the port to its one handler:
    # a wrong sServantName is served, not answered with -4 (TARSSERVERNOSERVANTERR)
    [r] = run_client(
        ["--obj", "Other.App.Obj@tcp -h 127.0.0.1 -p " + str(server.port), "--func", "tars_ping"]
    )
    assert r["ok"] is True
    assert server.wait_for_request(lambda q: q["servant"] == "Other.App.Obj")["func"] == "tars_ping"


def test_tars_ping(server: NodeProc) -> None:
    [r] = call(server.port, "tars_ping")
    assert r == {**r, "ok": True, "ret": 0}


def test_sleep_answers_late_and_times_out(server: NodeProc) -> None:
    [ok] = call(server.port, "sleep", "[50]", "--timeout", "5000")
    assert ok["ok"] is True
    assert ok["ret"] is None
    [late] = call(server.port, "sleep", "[3000]", "--timeout", "300")
    assert late["ok"] is False
    assert late["code"] == -13001  # @tars/rpc TarsError.CLIENT.REQUEST_TIMEOUT


def test_framework_errors(server: NodeProc) -> None:
    [r] = call(server.port, "fail", "[-5]")
    assert r["ok"] is False
    assert r["code"] == -5
    assert r["error"] == "fail requested with code -5"
    [r] = call(server.port, "fail", "[0]")
    assert r["code"] == -99
    [r] = call(server.port, "noSuchFunction")
    assert r["ok"] is False
    assert r["code"] == -3  # FUNC_NOT_FOUND from the generated-style onDispatch


def test_exit_code_reflects_failures(server: NodeProc) -> None:
    run = run_client_full(["--obj", direct(server.port), "--func", "fail"])
    assert run.returncode == 1
    run = run_client_full(["--obj", direct(server.port), "--func", "tars_ping"])
    assert run.returncode == 0


@pytest.mark.parametrize("version", [3, 2])
def test_tup(server: NodeProc, version: int) -> None:
    name = f"tup{version}"
    [r] = call(server.port, "hello", f'["{name}"]', "--tup", str(version))
    assert r["ok"] is True, r
    assert r["ret"] == f"hello {name}"
    req = server.wait_for_request(lambda q: q["func"] == "hello" and q["iVersion"] == version)
    assert req["sBuffer"]  # a UniAttribute map, not the bare tag-1 string
    assert req["sBuffer"] != "1605" + name.encode().hex()


def test_tup_error_code(server: NodeProc) -> None:
    [r] = call(server.port, "fail", "[-7]", "--tup", "3")
    assert r["ok"] is False
    assert r["code"] == -7  # carried in status STATUS_RESULT_CODE
    # @tars/rpc's TUP decoder does not pick up STATUS_RESULT_DESC: the text is lost
    assert r["error"] == ""


def test_oneway(server: NodeProc) -> None:
    [r] = call(server.port, "hello", '["oneway"]', "--oneway")
    assert r["ok"] is True
    assert r["oneway"] is True
    req = server.wait_for_request(lambda q: q["sBuffer"] == "1606" + b"oneway".hex())
    assert req["cPacketType"] == 1


def test_port_zero_endpoint_times_out() -> None:
    require_node()
    # connect(0) fails with ECONNREFUSED; the request stays queued until its timeout
    [r] = run_client(["--obj", direct(0), "--func", "hello", "--args", '["x"]', "--timeout", "300"])
    assert r["ok"] is False
    assert r["code"] == -13001


def test_locator_resolves_through_queryf(server: NodeProc) -> None:
    with node_server(
        ["--servant", QUERY_OBJ, "--queryf-endpoint", f"127.0.0.1:{server.port}"]
    ) as registry:
        locator = f"{QUERY_OBJ}@tcp -h 127.0.0.1 -p {registry.port}"
        results = run_client(
            ["--locator", locator, "--obj", OBJ, "--func", "hello", "--args", '["reg"]'],
            timeout=30,
        )
        assert [r["ret"] for r in results] == ["hello reg"]
        assert results[0]["endpoint"] == f"tcp -h 127.0.0.1 -p {server.port} -t 60000"
        q = registry.wait_for_request()
        assert q["func"] == "findObjectByIdInSameGroup"
        assert q["servant"] == QUERY_OBJ
        assert q["sBuffer"] == "1619" + OBJ.encode().hex()
        assert set(q["context"]) == {"node_name"}
        assert q["iTimeout"] == 3000

        # enableset + setdivision: the lookup becomes findObjectByIdInSameSet(id, setId)
        results = run_client(
            [
                *("--locator", locator, "--obj", OBJ, "--func", "hello", "--args", '["set"]'),
                *("--setdivision", "app.sz.1"),
            ],
            timeout=30,
        )
        assert [r["ret"] for r in results] == ["hello set"]
        q = registry.wait_for_request()
        assert q["func"] == "findObjectByIdInSameSet"
        assert q["sBuffer"] == "1619" + OBJ.encode().hex() + "2608" + b"app.sz.1".hex()


def test_unreachable_locator_fails_the_call() -> None:
    require_node()
    # port 1 on loopback: nothing listens, the registry lookup fails and the call,
    # left with no endpoint, times out
    [r] = run_client(
        [
            *("--locator", f"{QUERY_OBJ}@tcp -h 127.0.0.1 -p 1", "--obj", OBJ),
            *("--func", "hello", "--args", '["x"]', "--timeout", "300"),
        ]
    )
    assert r["ok"] is False
    assert r["code"] == -13001
    assert "no adapter selected" in str(r["error"])


@pytest.mark.parametrize("how", ["sigterm", "stdin"])
def test_server_stops_cleanly(how: str) -> None:
    require_node()
    srv = NodeProc(RPC_SERVER, ["--quiet"])
    srv.start()
    try:
        assert srv.proc is not None
        if how == "sigterm":
            srv.proc.terminate()
        else:
            assert srv.proc.stdin is not None
            srv.proc.stdin.close()
        assert srv.proc.wait(10) == 0
    finally:
        srv.stop()


def test_bad_arguments_fail_fast() -> None:
    require_node()
    srv = NodeProc(RPC_SERVER, ["--nonsense"], ready_timeout=10)
    with pytest.raises(NodeError, match="exited"):
        srv.start()
    assert srv.returncode == 2
    with pytest.raises(NodeError, match="exit 2"):
        run_client_full(["--func", "hello"])


def test_port_in_use_is_reported(server: NodeProc) -> None:
    srv = NodeProc(RPC_SERVER, ["--port", str(server.port)], ready_timeout=10)
    with pytest.raises(NodeError, match="exited"):
        srv.start()
    assert srv.returncode == 1
    assert any(line.startswith("ERROR ") for line in srv.stdout_lines())


def test_client_timeout_kills_the_process(server: NodeProc) -> None:
    with pytest.raises(NodeError, match="did not finish"):
        run_client_full(
            [
                *("--obj", direct(server.port), "--func", "sleep", "--args", "[5000]"),
                *("--timeout", "10000"),
            ],
            timeout=1,
        )
