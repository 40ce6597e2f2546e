"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright)
against a real registry, a relay and nodes over TCP: every figure on a page equals the
admin API's, a drain started from the page shows its progress to completion, and each
page is saved as a screenshot (``TARSCASCADE_ARTIFACTS``, default ``test-artifacts/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tarscascade.admin.node_api import create_node_app
from tarscascade.cli.runtime import RegistryProcess, serve_http, stop_http
from tarscascade.model import Category, State
from tarscascade.node.app import NodeAgent
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.testing import eventually
from tests.integration.admin.chromium import needs_chromium, shot, text
from tests.integration.admin.harness import AUTH, TOKEN
from tests.integration.admin.node_harness import WAIT
from tests.integration.admin.node_harness import node_agent as _agent
from tests.integration.admin.registry_thread import LoopThread, registry_in_thread

OBJ = "Test.HelloServer.HelloObj"
OTHER = "Test.WorldServer.WorldObj"
pytestmark = [pytest.mark.slow, needs_chromium]


def node_agent(name: str, upstreams: list[tuple[str, int]]) -> NodeAgent:
    agent = _agent(name, upstreams)
    agent.config.token = TOKEN  # the registry's token is also the cascade's
    return agent


@dataclass
class Fleet:
    lt: LoopThread
    rp: RegistryProcess
    agents: list[NodeAgent]
    url: str
    node_url: str

    def api(self, path: str) -> Any:
        r = httpx.get(self.url + path, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    @property
    def admin(self) -> RegistryAdmin:
        assert self.rp.admin is not None
        return self.rp.admin


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("dash")
    with registry_in_thread(tmp, TOKEN) as (lt, rp):
        up = [("127.0.0.1", rp.tars_port)]
        relay = node_agent("relay-1", up)
        direct = node_agent("node-a", up)
        agents = [relay, direct]
        http: list[Any] = []
        try:
            for a in agents:
                lt.run(a.start())
            leaf = node_agent("leaf-1", [("127.0.0.1", relay.port)])
            agents.append(leaf)
            lt.run(leaf.start())
            server, task, port = lt.run(serve_http(create_node_app(leaf), "127.0.0.1", 0, "n"))
            http.append((server, task))
            admin = rp.admin
            assert admin is not None
            for oid, eps in (
                (OBJ, ["tcp -h 10.0.0.1 -p 1001", "tcp -h 10.0.0.2 -p 1002 -s app.sz.1"]),
                (OTHER, ["tcp -h 10.0.1.1 -p 2001"]),
            ):
                for text in eps:
                    record = admin.build_endpoint(oid, text, node_name="node-a")
                    lt.run(admin.add_endpoint(record))
            f = Fleet(
                lt, rp, agents, f"http://127.0.0.1:{rp.http_port}", f"http://127.0.0.1:{port}"
            )
            lt.run(_converged(f))
            yield f
        finally:
            for server, task in http:
                lt.run(stop_http(server, task))
            for a in agents:
                lt.run(a.aclose())


async def _converged(f: Fleet) -> None:
    core = f.rp.core
    assert core is not None
    assert f.rp.hub is not None
    hub = f.rp.hub

    def done() -> bool:
        states = hub.node_states()
        return all(
            a.catalog.version(Category.OBJECTS) == core.catalog.version(Category.OBJECTS)
            for a in f.agents
        ) and {"relay-1", "node-a", "leaf-1"} <= {n for n, s in states.items() if s.connected}

    await eventually(done, timeout=WAIT, what="fleet converged")
    # and the registry has every node's acknowledgement of every category
    await eventually(
        lambda: all(all(n == 0 for n in s.lag.values()) for s in hub.node_states().values()),
        timeout=WAIT,
        what="no lag",
    )


def test_fleet_page_shows_the_apis_numbers_and_goes_live(fleet: Fleet, page: Any) -> None:
    page.goto(fleet.url + "/")
    page.wait_for_selector("#live.on")  # the SSE feed delivered at least one update
    status = fleet.api("/v1/status")
    nodes = fleet.api("/v1/nodes")["nodes"]
    assert text(page, '[data-k="registry.revision"]') == str(status["revision"])
    assert text(page, '[data-k="registry.epoch"]') == status["epoch"]
    assert text(page, '[data-k="nodes.total"]') == str(len(nodes))
    current = [n for n in nodes if n["connected"] and all(v == 0 for v in n["lag"].values())]
    assert text(page, "#count-current") == str(len(current))
    assert text(page, "#count-offline") == "0"
    for cat, c in status["categories"].items():
        row = f'tr[data-category="{cat}"]'
        assert text(page, f"{row} td:nth-child(2)") == str(c["version"]["revision"])
        assert text(page, f"{row} code") == c["digest"]
        holding = sum(1 for n in nodes if n["connected"] and n["lag"].get(cat) == 0)
        assert text(page, f'[data-k="registry.categories.{cat}.holding"]') == str(holding)
    assert text(page, '[data-k="registry.counts.endpoints"]') == str(status["counts"]["endpoints"])
    # a change made now shows up without a reload
    before = status["revision"]
    fleet.lt.run(fleet.admin.put_setting("dash.test", "1"))
    page.wait_for_function(
        "r => Number(document.querySelector('[data-k=\"registry.revision\"]').textContent) > r",
        arg=before,
    )
    page.wait_for_selector('svg[data-spark="changes"] polyline')  # two samples: a line
    shot(page, "fleet")


def test_cascade_tree_lists_relays_and_nodes_with_their_revisions(fleet: Fleet, page: Any) -> None:
    page.goto(fleet.url + "/ui/tree")
    page.wait_for_selector("#live.on")
    nodes = {n["name"]: n for n in fleet.api("/v1/nodes")["nodes"]}
    for name, n in nodes.items():
        row = f'#tree tr[data-node="{name}"]'
        cells = page.locator(f"{row} td").all_inner_texts()
        assert cells[0] == name
        assert cells[2] == (n["via"] or "registry")
        # the page's revision is the API's (a write between the two reads may move both)
        assert int(cells[4]) <= nodes[name]["versions"]["objects"]["revision"] + 5
    assert page.locator('#tree tr[data-node="leaf-1"] td').nth(2).inner_text() == "relay-1"
    relay_cells = page.locator('#tree tr[data-node="relay-1"] td').all_inner_texts()
    assert relay_cells[7] == "1"  # relays for leaf-1
    shot(page, "tree")
    page.fill('input[name="q"]', "leaf")
    page.click('form.search button[type="submit"]')
    page.wait_for_selector('#tree tr[data-node="leaf-1"]')
    assert page.locator("#tree tbody tr").count() == 1
    assert "1 nodes" in text(page, "#tree-total")


def test_objects_search_and_an_objects_page(fleet: Fleet, page: Any) -> None:
    page.goto(fleet.url + "/ui/objects")
    listed = fleet.api("/v1/objects")["objects"]
    rows = page.locator("#objects tbody tr")
    assert rows.count() == len(listed)
    for i, o in enumerate(listed):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells == [o["object_id"], str(o["endpoints"]), str(o["active"]), str(o["inactive"])]
    page.fill('input[name="q"]', "Test.World")
    page.click('form.search button[type="submit"]')
    page.wait_for_url("**q=Test.World**")
    assert page.locator("#objects tbody tr").count() == 1
    shot(page, "objects")
    page.click(f"text={OTHER}")
    page.wait_for_selector("#endpoints")
    eps = fleet.api(f"/v1/objects/{OTHER}")["endpoints"]
    assert page.locator("#endpoints tbody tr").count() == len(eps)

    # what a client in set app.sz.1 gets: the QueryF answer, as the API's resolve would
    page.goto(fleet.url + f"/ui/objects/{OBJ}?set=app.sz.1")
    answer = text(page, "#answer")
    assert "findObjectByIdInSameSet" in answer
    assert "tcp -h 10.0.0.2 -p 1002" in answer
    assert "10.0.0.1" not in answer
    changes = page.locator("#changes tbody tr")
    assert changes.count() >= 2  # both endpoints' additions are in the change log
    assert 'endpoint "tcp -h 10.0.0.1 -p 1001"' in text(page, "#changes")


def test_drain_from_the_page_shows_every_node_acknowledge(fleet: Fleet, page: Any) -> None:
    page.goto(fleet.url + f"/ui/objects/{OBJ}")
    row = page.locator('#endpoints tr[data-host="10.0.0.1"]')
    # without the token the API refuses, and the page says so
    row.locator("button.drain").click()
    page.wait_for_selector('#drain[data-done="error"]')
    assert "HTTP 401" in text(page, "#drain-state")
    page.fill("#token", TOKEN)
    row.locator("button.drain").click()
    page.wait_for_selector('#drain[data-done="complete"]')
    connected = [n for n in fleet.api("/v1/nodes")["nodes"] if n["connected"]]
    assert text(page, "#drain-count") == f"{len(connected)} / {len(connected)}"
    assert text(page, "#drain-state").startswith("complete in ")
    shot(page, "drain")
    ep = fleet.api(f"/v1/objects/{OBJ}/endpoints/10.0.0.1/1001")
    assert ep["setting_state"] == State.INACTIVE.value
    kept = fleet.api("/v1/drains")["drains"][0]
    assert kept["done"] is True
    assert kept["result"]["complete"] is True
    assert sorted(kept["result"]["acked"]) == sorted(n["name"] for n in connected)
    # every node really serves it inactive now
    for a in fleet.agents:
        (r,) = [x for x in a.catalog.get_object(OBJ) if x.port == 1001]
        assert not a.catalog.is_active(r)
    page.reload()
    assert "10.0.0.1" in text(page, "#recent-drains")  # the result is kept


def test_the_node_page_shows_its_replica(fleet: Fleet, page: Any) -> None:
    page.goto(fleet.node_url + "/")
    page.wait_for_selector("#live.on")
    status = httpx.get(fleet.node_url + "/status", timeout=30).json()
    assert text(page, '[data-k="node"]') == "leaf-1"
    row = 'tr[data-category="objects"]'
    assert text(page, f"{row} code") == status["categories"]["objects"]["digest"]
    assert text(page, '[data-k="upstream"]') == status["upstream"]
    shot(page, "node")


def test_pages_refuse_bad_input_like_the_api(fleet: Fleet) -> None:
    r = httpx.get(fleet.url + "/ui/objects/bad%20id", timeout=30)
    assert (r.status_code, r.json()["reason"]) == (400, "bad_request")
    assert httpx.get(fleet.url + "/ui/tree?page=0", timeout=30).status_code == 400
    r = httpx.get(fleet.url + "/ui/objects/No.Such.Obj", timeout=30)
    assert r.status_code == 200
    assert "no endpoint" in r.text
    assert AUTH  # writes from the page go through the API's token check (test above)
