"""Resolver rules without sockets: which QueryF method, keeping the old list, the
last-known-good file, and push wake-ups (a fake finder stands in for the locator)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tarscascade.client.lkg import EndpointList, LkgFile, lkg_key
from tarscascade.client.locator import Answer, LocatorError, Query
from tarscascade.client.proxy import EndpointPool, ServantProxy
from tarscascade.client.resolver import (
    Resolver,
    ResolverOptions,
    StaticResolver,
    check_set_division,
    choose_query,
)
from tarscascade.client.tasks import TaskOwner
from tarscascade.errors import EndpointSyntaxError, NoEndpointError
from tarscascade.testing import eventually
from tarscascade.wire.codec import STRING
from tarscascade.wire.endpoint import Endpoint, parse_endpoint
from tarscascade.wire.idl.endpointf import EndpointF
from tarscascade.wire.interface import Method, Param

OBJ = "Test.HelloServer.HelloObj"


def ef(port: int, istcp: int = 1, set_id: str = "") -> EndpointF:
    return EndpointF(host="10.0.0.1", port=port, timeout=3000, istcp=istcp, setId=set_id)


class FakeFinder:
    def __init__(self) -> None:
        self.answers: list[Answer | Exception] = []
        self.calls: list[tuple[str, Query]] = []
        self.subscribed: list[str] = []
        self.default: Answer | Exception = Answer(0, [ef(1)], [], "fake")

    async def find(self, object_id: str, query: Query) -> Answer:
        self.calls.append((object_id, query))
        a = self.answers.pop(0) if self.answers else self.default
        if isinstance(a, Exception):
            raise a
        return a

    async def subscribe(self, object_id: str) -> None:
        self.subscribed.append(object_id)


def ports(eps: tuple[Endpoint, ...]) -> list[int]:
    return [e.port for e in eps]


# -- method choice
def test_query_method_follows_set_then_station_then_group() -> None:
    q = choose_query()
    assert q.method.name == "findObjectByIdInSameGroup"
    assert q.args(OBJ) == (OBJ,)
    q = choose_query(set_division="app.sz.1")
    assert q.method.name == "findObjectByIdInSameSet"
    assert q.args(OBJ) == (OBJ, "app.sz.1")
    q = choose_query(station="shenzhen")
    assert q.method.name == "findObjectByIdInSameStation"
    assert q.args(OBJ) == (OBJ, "shenzhen")
    assert choose_query("app.sz.*", "shenzhen").method.name == "findObjectByIdInSameSet"


@pytest.mark.parametrize("bad", ["app", "app.sz", "*.sz.1", "app.*.1", "a..1", "a.b.c.d"])
def test_malformed_set_division_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="set division"):
        check_set_division(bad)


def test_refresh_interval_is_at_least_one_second() -> None:
    assert ResolverOptions(refresh_interval=1.0).refresh_interval == 1.0
    with pytest.raises(ValueError, match="below"):
        ResolverOptions(refresh_interval=0.5)


# -- applying answers
async def test_a_new_list_is_applied_and_listeners_hear_of_changes_only() -> None:
    f = FakeFinder()
    r = Resolver(OBJ, f, choose_query())
    seen: list[EndpointList] = []
    r.add_listener(seen.append)
    f.answers = [Answer(0, [ef(1), ef(2)], [ef(3)], "x"), Answer(0, [ef(1), ef(2)], [ef(3)], "x")]
    assert await r.refresh()
    assert ports(r.endpoints.active) == [1, 2]
    assert ports(r.endpoints.inactive) == [3]
    assert r.endpoints.source == "locator"
    assert r.generation == 1
    assert await r.refresh()
    assert len(seen) == 1
    assert r.generation == 1


@pytest.mark.parametrize(
    "bad",
    [
        LocatorError("node down"),
        Answer(-1, [], [], "x"),  # e.g. InSameSet with no such set
        Answer(0, [], [ef(1)], "x"),  # no active endpoint: TARS keeps the old list
        Answer(0, [ef(7, istcp=0)], [], "x"),  # nothing this client can call
    ],
    ids=["failure", "nonzero", "empty", "udp-only"],
)
async def test_the_old_list_is_kept_when_the_answer_is_unusable(bad: Answer | Exception) -> None:
    f = FakeFinder()
    r = Resolver(OBJ, f, choose_query())
    await r.refresh()
    f.answers = [bad]
    ok = await r.refresh()
    assert ok == (isinstance(bad, Answer) and bad.ret == 0)
    assert ports(r.endpoints.active) == [1]
    assert r.generation == 1


async def test_endpoints_this_client_cannot_call_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    f = FakeFinder()
    f.default = Answer(0, [ef(1, istcp=0), ef(2), ef(3, istcp=2), ef(4, istcp=9)], [], "x")
    r = Resolver(OBJ, f, choose_query())
    with caplog.at_level("WARNING"):
        await r.refresh()
        await r.refresh()
    assert ports(r.endpoints.active) == [2]
    # UDP and SSL are refused, named, and said once (not at every refresh)
    assert [e.transport for e in r.unsupported] == ["udp", "ssl"]
    said = [m for m in caplog.messages if "cannot call" in m]
    assert len(said) == 1
    assert "udp -h 10.0.0.1 -p 1" in said[0]


async def test_a_list_of_only_udp_and_ssl_gives_a_clear_error_not_silence() -> None:
    f = FakeFinder()
    f.default = Answer(0, [ef(1, istcp=0), ef(3, istcp=2)], [], "x")
    r = Resolver(OBJ, f, choose_query())
    await r.refresh()
    owner = TaskOwner("t")
    proxy = ServantProxy(OBJ, EndpointPool(OBJ, r, owner))
    hello = Method("hello", (Param("name", STRING),), STRING)
    with pytest.raises(NoEndpointError, match=r"refused 2 udp/ssl endpoint\(s\), tcp only"):
        await proxy.invoke(hello, ["x"], timeout=0.5)
    await owner.aclose()
    # a direct object string naming udp is refused at once
    with pytest.raises(EndpointSyntaxError, match="udp endpoints are not supported"):
        StaticResolver(OBJ, [parse_endpoint("udp -h 10.0.0.1 -p 9")])


# -- the refresh loop and pushes
async def test_a_push_wakes_the_loop_at_once_and_subscribes_first() -> None:
    f = FakeFinder()
    r = Resolver(OBJ, f, choose_query(), ResolverOptions(refresh_interval=3600, subscribe=True))
    task = asyncio.create_task(r.run())
    try:
        await asyncio.wait_for(r.wait_ready(), 5)
        assert f.subscribed == [OBJ]
        assert len(f.calls) == 1
        f.default = Answer(0, [ef(5)], [], "x")
        r.notify()
        await eventually(lambda: ports(r.endpoints.active) == [5], timeout=5)
        assert len(f.calls) == 2
        assert r.stats.pushes == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_after_a_failure_the_loop_retries_after_fail_interval() -> None:
    f = FakeFinder()
    f.answers = [LocatorError("down")]
    r = Resolver(OBJ, f, choose_query(), ResolverOptions(refresh_interval=3600, fail_interval=0.01))
    task = asyncio.create_task(r.run())
    try:
        await eventually(lambda: len(f.calls) >= 2, timeout=5)
        assert ports(r.endpoints.active) == [1]
        assert r.stats.failures == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- last-known-good file
async def test_lists_are_saved_atomically_and_seed_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "lkg" / "client.json"
    f = FakeFinder()
    f.default = Answer(0, [ef(1, set_id="app.sz.1"), ef(2)], [ef(3)], "x")
    lkg = LkgFile(path, "loc")
    r = Resolver(OBJ, f, choose_query(), lkg=lkg, lkg_key=lkg_key(OBJ))
    await r.refresh()
    await r.refresh()  # unchanged: not written again
    assert lkg.writes == 1
    assert [p.name for p in path.parent.iterdir()] == ["client.json"]  # no temp files left
    doc = json.loads(path.read_text())
    assert doc["objects"][OBJ]["active"][0] == "tcp -h 10.0.0.1 -p 1 -t 3000 -w 0 -s app.sz.1"

    # a restarted process: the locator is down, the file answers
    loaded = LkgFile(path, "loc").load()
    assert loaded[OBJ].source == "lkg"
    dead = FakeFinder()
    dead.default = LocatorError("node down")
    r2 = Resolver(OBJ, dead, choose_query(), lkg=LkgFile(path, "loc"), initial=loaded[OBJ])
    assert not await r2.refresh()
    assert ports(r2.endpoints.active) == [1, 2]
    assert ports(r2.endpoints.inactive) == [3]
    assert r2.endpoints.active[0].set_id == "app.sz.1"


def test_lkg_entries_of_other_locators_or_bad_files_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    lkg = LkgFile(path, "loc-a")
    lkg.save(OBJ, EndpointList((parse_endpoint("tcp -h h -p 1"),), ()))
    lkg.save("A.B.C", EndpointList((parse_endpoint("tcp -h h -p 2"),), ()))
    assert set(LkgFile(path, "loc-a").load()) == {OBJ, "A.B.C"}  # both kept
    assert LkgFile(path, "loc-b").load() == {}
    path.write_text("{not json")
    assert LkgFile(path, "loc-a").load() == {}
    assert LkgFile(tmp_path / "missing.json", "loc-a").load() == {}
    doc = {"format": 1, "locator": "x", "objects": {OBJ: {"active": ["bogus"], "inactive": []}}}
    path.write_text(json.dumps(doc))
    assert LkgFile(path, "x").load() == {}
    assert lkg_key(OBJ, "app.sz.1") == f"{OBJ}#set=app.sz.1"


def test_resolvers_of_one_process_refresh_with_jitter_not_in_lockstep() -> None:
    """A hundred resolvers started together: their waits spread over ±20 % of the
    interval (never below the minimum), so their refreshes drift apart."""
    f = FakeFinder()
    opts = ResolverOptions(refresh_interval=3.0)
    resolvers = [Resolver(OBJ, f, choose_query(), opts) for _ in range(100)]
    delays = [r.next_delay(True) for r in resolvers]
    assert all(2.4 <= d <= 3.6 for d in delays)
    assert max(delays) - min(delays) > 0.6  # spread, not one value for all
    assert len({round(d, 6) for d in delays}) > 90
    # after a failure: the (short) fail interval, jittered the same way
    failed = Resolver(OBJ, f, choose_query(), ResolverOptions(fail_interval=0.5))
    assert all(0.4 <= failed.next_delay(False) <= 0.6 for _ in range(50))
    # the minimum holds even at the shortest interval
    short = Resolver(OBJ, f, choose_query(), ResolverOptions(refresh_interval=1.0))
    assert min(short.next_delay(True) for _ in range(50)) >= 1.0
    with pytest.raises(ValueError, match="jitter"):
        ResolverOptions(refresh_jitter=1.5)
