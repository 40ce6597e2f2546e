"""Chaos: a registry, two nodes and a relay with a leaf, real processes, real faults.

Every process is a real ``tarscascade`` process; every cascade link goes through a
fault proxy of our own (drop, blackhole, delay). A seeded random schedule interleaves
admin writes through the HTTP API (adds, removes, state flips, group rules, settings)
with faults: proxy modes, and SIGKILL + restart of the nodes, the relay and the
registry. Observers poll every node's ``/status`` and lookups all along. After the
faults stop, every node must converge to the registry's digests, and:

* **lost**: writes acknowledged (2xx) but not in the registry's final state;
* **resurrected**: a node served an endpoint after it had reported an objects version
  at or past the endpoint's acknowledged removal (same process, same lineage);
* **time travel**: a node reported a version older than one it had reported before
  (same process, same lineage);
* **empty**: a node answered an object that always has an endpoint with no endpoint;

all must be zero. Used by ``tests/integration/test_chaos.py`` (bounded, ~1-2 min) and by
``python -m bench --only chaos`` (a longer soak; its figures go to bench/results/).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import cli, free_port
from tarscascade.testing.faultproxy import FaultProxy

OBJECTS = [f"Chaos.Svc{i}.Obj" for i in range(5)]
#: every object keeps this endpoint for ever: an empty answer for it is a bug
BASE_HOST = "10.99.0.1"
NODE_NAMES = ("n1", "n2", "relay", "leaf")
HTTP_TIMEOUT = 5.0


@dataclass
class Child:
    """One tarscascade process we can SIGKILL and start again with the same arguments."""

    name: str
    args: list[str]
    http: int
    tars: int
    log: Path
    proc: asyncio.subprocess.Process | None = None
    lives: int = 0

    async def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        out = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tarscascade.cli", *self.args, stdout=out, stderr=out, env=env
        )
        out.close()
        self.lives += 1

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"; {self.name}'s log ends:\n" + "\n".join(text)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        self.proc = None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()
        self.proc = None


@dataclass
class Oracle:
    """What the registry must hold: acknowledged writes, and keys whose last write's
    outcome is unknown (the registry died under it)."""

    endpoints: dict[tuple[str, str, int], str] = field(default_factory=dict)  # -> state
    uncertain: set[tuple[str, str, int]] = field(default_factory=set)
    settings: dict[str, str] = field(default_factory=dict)
    uncertain_settings: set[str] = field(default_factory=set)
    #: acknowledged removals: key -> revision
    removed: dict[tuple[str, str, int], int] = field(default_factory=dict)
    acked: int = 0
    refused: int = 0
    unknown: int = 0


@dataclass
class Observed:
    """What one node process said, for the checks."""

    versions: dict[str, tuple[str, int]] = field(default_factory=dict)  # category -> last
    time_travel: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    polls: int = 0
    lookups: int = 0


class Chaos:
    def __init__(self, workdir: Path, seed: int, *, faults_every: float = 2.0) -> None:
        self.dir = workdir
        self.rng = random.Random(seed)
        self.faults_every = faults_every
        self.oracle = Oracle()
        self.observed: dict[str, Observed] = {n: Observed() for n in NODE_NAMES}
        self.faults: Counter[str] = Counter()
        self.ops: Counter[str] = Counter()
        self.registry: Child | None = None
        self.nodes: dict[str, Child] = {}
        self.proxies: dict[str, FaultProxy] = {}
        self._added: list[tuple[str, str, int]] = []
        self._next_port = 20000
        self._http: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ set-up

    async def start(self) -> None:
        reg_tars, reg_http = free_port(), free_port()
        self.registry = Child(
            "registry",
            [
                "registry",
                "--db",
                f"sqlite:///{self.dir / 'registry.db'}",
                "--listen",
                f"127.0.0.1:{reg_tars}",
                "--http",
                f"127.0.0.1:{reg_http}",
                "--reload-interval",
                "5",
            ],
            reg_http,
            reg_tars,
            self.dir / "registry.log",
        )
        await self.registry.start()
        self._http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{reg_http}", timeout=HTTP_TIMEOUT
        )
        await self._until(self._registry_up, 30, "the registry")
        for i, obj in enumerate(OBJECTS):
            await self._write(
                "POST",
                f"/v1/objects/{obj}/endpoints",
                {"endpoint": f"tcp -h {BASE_HOST} -p {9000 + i}"},
            )
        for name in ("n1", "n2", "relay"):
            self.proxies[name] = await FaultProxy(("127.0.0.1", reg_tars)).start()
        relay_tars = free_port()
        self.proxies["leaf"] = await FaultProxy(("127.0.0.1", relay_tars)).start()
        for name in NODE_NAMES:
            tars = relay_tars if name == "relay" else free_port()
            http = free_port()
            upstream = self.proxies[name].address
            self.nodes[name] = Child(
                name,
                [
                    "agent",
                    "--name",
                    name,
                    "--upstream",
                    f"{upstream[0]}:{upstream[1]}",
                    "--listen",
                    f"127.0.0.1:{tars}",
                    "--http",
                    f"127.0.0.1:{http}",
                    "--data-dir",
                    str(self.dir / name),
                ],
                http,
                tars,
                self.dir / f"{name}.log",
            )
            await self.nodes[name].start()
        for name in NODE_NAMES:
            await self._until(
                lambda n=name: self._node_has_data(n), 60, f"node {name}", self.nodes[name]
            )

    async def _registry_up(self) -> bool:
        assert self._http is not None
        try:
            return (await self._http.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _node_status(self, name: str) -> dict[str, Any] | None:
        node = self.nodes[name]
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as c:
                r = await c.get(f"http://127.0.0.1:{node.http}/status")
            return r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    async def _node_has_data(self, name: str) -> bool:
        st = await self._node_status(name)
        return bool(st and st["has_data"])

    async def _until(
        self, check: Any, timeout: float, what: str, child: Child | None = None
    ) -> float:
        """Wait for ``check``; a child that exits meanwhile fails at once, and either
        failure says what the child logged last (a port taken, a crash)."""
        start = time.monotonic()
        while True:
            if await check():
                return time.monotonic() - start
            proc = child.proc if child is not None else None
            exited = proc is not None and proc.returncode is not None
            if exited or time.monotonic() - start > timeout:
                why = "exited" if exited else f"not ready within {timeout} s"
                tail = child.log_tail() if child is not None else ""
                raise TimeoutError(f"{what} {why}{tail}")
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ writes

    async def _write(self, method: str, path: str, body: Any = None) -> tuple[str, Any]:
        """("acked", json) | ("refused", status) | ("unknown", None)."""
        assert self._http is not None
        try:
            r = await self._http.request(method, path, json=body)
        except httpx.ConnectError:
            self.oracle.refused += 1  # never sent: nothing happened
            return "refused", None
        except httpx.HTTPError:
            self.oracle.unknown += 1  # sent, no answer: it may or may not have happened
            return "unknown", None
        if 200 <= r.status_code < 300:
            self.oracle.acked += 1
            return "acked", r.json()
        if r.status_code >= 500:
            self.oracle.unknown += 1  # 503: the registry could not say (store or catch-up)
            return "unknown", None
        self.oracle.refused += 1
        return "refused", r.status_code

    async def random_write(self) -> None:
        o, rng = self.oracle, self.rng
        kind = rng.choice(["add", "add", "remove", "flip", "flip", "setting", "rule"])
        self.ops[kind] += 1
        if kind == "add":
            obj = rng.choice(OBJECTS)
            self._next_port += 1
            key = (obj, "10.1.0.1", self._next_port)
            out, _ = await self._write(
                "POST", f"/v1/objects/{obj}/endpoints", {"endpoint": f"tcp -h {key[1]} -p {key[2]}"}
            )
            self._added.append(key)
            self._mark(key, out, "active")
        elif kind in ("remove", "flip") and self._added:
            key = rng.choice(self._added)
            obj, host, port = key
            path = f"/v1/objects/{obj}/endpoints/{host}/{port}"
            if kind == "remove":
                out, body = await self._write("DELETE", path)
                if out == "acked":
                    o.endpoints.pop(key, None)
                    o.uncertain.discard(key)
                    o.removed[key] = int(body["revision"])
                    self._added.remove(key)
                elif out == "unknown":
                    o.uncertain.add(key)
            else:
                state = rng.choice(["active", "inactive"])
                out, _ = await self._write("PUT", path + "/state", {"state": state})
                if key in o.endpoints or key in o.uncertain:
                    self._mark(key, out, state)
        elif kind == "setting":
            name = f"chaos.s{rng.randrange(5)}"
            value = str(rng.randrange(10**6))
            out, _ = await self._write("PUT", f"/v1/settings/{name}", {"value": value})
            if out == "acked":
                o.settings[name] = value
                o.uncertain_settings.discard(name)
            elif out == "unknown":
                o.uncertain_settings.add(name)
        elif kind == "rule":
            gid = rng.randrange(1, 4)
            body = {"group_name": f"g{gid}", "allow_ip_rule": [f"10.{gid}.{rng.randrange(9)}.*"]}
            await self._write("PUT", f"/v1/groups/rules/{gid}", body)

    def _mark(self, key: tuple[str, str, int], out: str, state: str) -> None:
        o = self.oracle
        if out == "acked":
            o.endpoints[key] = state
            o.uncertain.discard(key)
            o.removed.pop(key, None)
        elif out == "unknown":
            o.uncertain.add(key)

    # ------------------------------------------------------------------ faults

    async def random_fault(self) -> None:
        rng = self.rng
        kind = rng.choice(
            ["drop", "blackhole", "delay", "kill-node", "kill-relay", "kill-registry"]
        )
        self.faults[kind] += 1
        if kind in ("drop", "blackhole", "delay"):
            proxy = self.proxies[rng.choice(list(self.proxies))]
            proxy.set(kind, delay=rng.uniform(0.05, 0.3))  # type: ignore[arg-type]
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            proxy.set("pass")
        elif kind == "kill-registry":
            assert self.registry is not None
            await self.registry.kill()
            await asyncio.sleep(rng.uniform(0.2, 2.0))
            await self.registry.start()
            await self._until(self._registry_up, 30, "the registry after a kill")
        else:
            name = "relay" if kind == "kill-relay" else rng.choice(["n1", "n2", "leaf"])
            node = self.nodes[name]
            await node.kill()
            self.observed[name].versions.clear()  # a new process: its own history
            await asyncio.sleep(rng.uniform(0.2, 2.0))
            await node.start()

    # ------------------------------------------------------------------ observers

    async def observe(self, name: str, stop: asyncio.Event) -> None:
        node, obs = self.nodes[name], self.observed[name]
        async with httpx.AsyncClient(timeout=2.0) as c:
            while not stop.is_set():
                await asyncio.sleep(0.05)
                lives = node.lives
                try:
                    st = (await c.get(f"http://127.0.0.1:{node.http}/status")).json()
                    answers = [
                        (await c.get(f"http://127.0.0.1:{node.http}/v1/objects/{obj}"))
                        for obj in OBJECTS
                    ]
                except (httpx.HTTPError, ValueError):
                    continue
                if node.lives != lives:
                    continue  # restarted meanwhile: this poll spans two processes
                obs.polls += 1
                self._check_versions(name, obs, st)
                objects = obs.versions.get("objects")
                for r in answers:
                    if r.status_code != 200:
                        continue  # 503: no data yet (a TARS client keeps its old list)
                    body = r.json()
                    obs.lookups += 1
                    eps = body["active"] + body["inactive"]
                    if not eps:
                        obs.empty.append(f"{body['object_id']} at {objects}")
                    for e in eps:
                        key = (body["object_id"], e["host"], e["port"])
                        gone = self.oracle.removed.get(key)
                        if gone is not None and objects is not None and objects[1] >= gone:
                            # it reported holding the removal before this answer
                            if (
                                key not in self.oracle.endpoints
                                and key not in self.oracle.uncertain
                            ):
                                obs.resurrected.append(
                                    f"{key} removed at {gone}, node at {objects}"
                                )

    def _check_versions(self, name: str, obs: Observed, st: dict[str, Any]) -> None:
        for cat, info in st["categories"].items():
            v = (info["version"]["epoch"], int(info["version"]["revision"]))
            last = obs.versions.get(cat)
            if last is not None and last[0] == v[0] and v[1] < last[1]:
                obs.time_travel.append(f"{name} {cat}: {last} -> {v}")
            if v[0]:
                obs.versions[cat] = (
                    v if last is None or last[0] != v[0] or v[1] >= last[1] else last
                )

    # ------------------------------------------------------------------ run

    async def run(self, duration: float, writes_per_s: float = 10.0) -> dict[str, Any]:
        stop = asyncio.Event()
        observers = [asyncio.create_task(self.observe(n, stop)) for n in NODE_NAMES]

        async def writer() -> None:
            while not stop.is_set():
                await self.random_write()
                await asyncio.sleep(self.rng.expovariate(writes_per_s))

        async def faulter() -> None:
            while not stop.is_set():
                await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.faults_every)
                if not stop.is_set():
                    await self.random_fault()

        tasks = [asyncio.create_task(writer()), asyncio.create_task(faulter())]
        await asyncio.sleep(duration)
        stop.set()
        await asyncio.gather(*tasks)
        # heal: every link passes, every process runs
        for p in self.proxies.values():
            p.set("pass")
        healed = time.monotonic()
        converge = await self._until(self._converged, 90, "convergence after the faults")
        for t in observers:
            t.cancel()
        for t in observers:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        lost = await self._lost()
        return {
            "duration_s": duration,
            "ops": dict(self.ops),
            "writes": {
                "acked": self.oracle.acked,
                "refused": self.oracle.refused,
                "unknown": self.oracle.unknown,
            },
            "faults": dict(self.faults),
            "convergence_s": round(converge, 2),
            "healed_to_converged_s": round(time.monotonic() - healed, 2),
            "lost": lost,
            "resurrected": sum(len(o.resurrected) for o in self.observed.values()),
            "time_travel": sum(len(o.time_travel) for o in self.observed.values()),
            "empty": sum(len(o.empty) for o in self.observed.values()),
            "polls": sum(o.polls for o in self.observed.values()),
            "lookups": sum(o.lookups for o in self.observed.values()),
            "examples": {
                n: (o.resurrected + o.time_travel + o.empty)[:3]
                for n, o in self.observed.items()
                if o.resurrected or o.time_travel or o.empty
            },
        }

    async def _converged(self) -> bool:
        assert self._http is not None
        try:
            reg = (await self._http.get("/v1/status")).json()["categories"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        want = {c: v["digest"] for c, v in reg.items()}
        for name in NODE_NAMES:
            st = await self._node_status(name)
            if st is None or {c: v["digest"] for c, v in st["categories"].items()} != want:
                return False
        return True

    async def _lost(self) -> list[str]:
        assert self._http is not None
        o = self.oracle
        held: dict[tuple[str, str, int], str] = {}
        for obj in OBJECTS:
            body = (await self._http.get(f"/v1/objects/{obj}")).json()
            for e in body["endpoints"]:
                held[(obj, e["host"], e["port"])] = e["setting_state"]
        lost = []
        for key, state in o.endpoints.items():
            if key not in o.uncertain and held.get(key) != state:
                lost.append(f"{key}: acknowledged {state}, registry has {held.get(key)}")
        for key in o.removed:
            if key not in o.uncertain and key not in o.endpoints and key in held:
                lost.append(f"{key}: removal acknowledged, registry still has it")
        for name, value in o.settings.items():
            if name in o.uncertain_settings:
                continue
            r = await self._http.get(f"/v1/settings/{name}")
            got = r.json().get("value") if r.status_code == 200 else None
            if got != value:
                lost.append(f"setting {name}: acknowledged {value}, registry has {got}")
        return lost

    async def aclose(self) -> None:
        for node in self.nodes.values():
            await node.stop()
        if self.registry is not None:
            await self.registry.stop()
        for p in self.proxies.values():
            await p.aclose()
        if self._http is not None:
            await self._http.aclose()


async def chaos_run(duration: float, seed: int, workdir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tc-chaos-") as tmp:
        chaos = Chaos(workdir or Path(tmp), seed)
        try:
            await chaos.start()
            return await chaos.run(duration)
        finally:
            await chaos.aclose()


def run(quick: bool) -> dict[str, Any]:
    seeds, duration = ((1,), 10.0) if quick else ((1, 2, 3), 120.0)
    rounds = [asyncio.run(chaos_run(duration, seed)) for seed in seeds]
    conv = sorted(r["convergence_s"] for r in rounds)
    return {
        "rounds": rounds,
        "convergence_s": {"p50": conv[len(conv) // 2], "max": conv[-1]},
        "totals": {
            k: sum(len(r[k]) if isinstance(r[k], list) else r[k] for r in rounds)
            for k in ("lost", "resurrected", "time_travel", "empty")
        },
    }


def main(argv: list[str] | None = None) -> int:
    return cli("chaos", run, __doc__, argv)


if __name__ == "__main__":
    main()
