"""Every route of every admin app knows the query parameters it declares (admin/http.py's
DeclaredQueryRoute), read once per route when it is built; anything else is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.datastructures import QueryParams

from tarscascade.admin import create_node_app, create_registry_app
from tarscascade.admin.http import DeclaredQueryRoute, query_refusal
from tarscascade.node.app import NodeAgent, NodeConfig
from tarscascade.registry.admin_ops import RegistryAdmin
from tarscascade.registry.core import RegistryCore
from tarscascade.store import SqlStore

#: the framework's own pages and the static files: plain Starlette routes, not the API's
FRAMEWORK_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/ui/static"}
#: the pages outside the OpenAPI document (the dashboard's), by app, path and method
HIDDEN = {
    ("registry", "/", "GET"): set(),
    ("registry", "/ui/tree", "GET"): {"q", "page"},
    ("registry", "/ui/objects", "GET"): {"q", "cursor"},
    ("registry", "/ui/objects/{object_id}", "GET"): {"caller", "set", "station"},
    ("registry", "/ui/events", "GET"): {"view", "q", "page"},
    ("node", "/", "GET"): set(),
    ("node", "/ui/events", "GET"): set(),
}


class _Importer:
    """Enough of an importer for the db_tars routes to exist."""

    held = None

    def status(self) -> dict[str, Any]:
        return {}

    async def confirm(self, timeout: float = 0) -> bool:
        return False

    async def reload(self, timeout: float = 0) -> None:
        return None


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[dict[str, FastAPI]]:
    store = SqlStore.open(f"sqlite:///{tmp_path}/r.db")
    try:
        admin = RegistryAdmin(RegistryCore(store))
        agent = NodeAgent(NodeConfig(name="n1", upstreams=[], listen=("127.0.0.1", 0)))
        yield {
            "registry": create_registry_app(admin, token="t", importer=_Importer()),
            "node": create_node_app(agent),
        }
    finally:
        store.close()


def test_every_route_of_every_app_knows_its_query_parameters(apps: dict[str, FastAPI]) -> None:
    seen = set()
    for name, app in apps.items():
        doc = app.openapi()
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            if not isinstance(route, APIRoute):
                assert getattr(route, "path", None) in FRAMEWORK_PATHS, (name, route)
                continue
            assert isinstance(route, DeclaredQueryRoute), (name, route.path)
            assert route.single_query == route.query_names  # no route takes a list
            for method in route.methods - {"HEAD"}:
                seen.add((name, route.path, method))
                if not route.include_in_schema:
                    assert route.query_names == HIDDEN[name, route.path, method]
                    continue
                op = doc["paths"][route.path][method.lower()]
                documented = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
                assert route.query_names == documented, (name, method, route.path)
                assert "400" in op["responses"], (name, method, route.path)
    assert set(HIDDEN) <= seen
    assert len(seen) >= 40
    # the precondition's if_revision comes from a dependency, not the handler's signature
    registry = {r.path: r for r in apps["registry"].routes if isinstance(r, APIRoute)}
    assert registry["/v1/nodes/{name}"].query_names == {"if_revision"}
    assert registry["/v1/objects"].query_names == {"limit", "cursor", "prefix"}


async def _listed(
    tags: Annotated[list[str] | None, Query()] = None,
) -> list[str] | None:
    return tags


def test_names_come_from_aliases_dependencies_and_list_parameters_may_repeat() -> None:
    async def endpoint(
        set_id: Annotated[str, Query(alias="set")] = "",
        tags: Annotated[list[str] | None, Depends(_listed)] = None,
    ) -> None:
        return None

    route = DeclaredQueryRoute("/x", endpoint)
    assert route.query_names == {"set", "tags"}
    assert route.single_query == {"set"}
    assert route.responses[400]["description"].startswith("bad request")

    def refusal(query: str) -> str | None:
        return query_refusal(QueryParams(query), route.query_names, route.single_query)

    assert refusal("set=a&tags=b&tags=c") is None
    assert refusal("set_id=a") == "unknown query parameter 'set_id' (this route takes: set, tags)"
    assert (
        refusal("set=a&set=b") == "query parameter 'set' given more than once (it takes one value)"
    )
    assert refusal("=false") == "unknown query parameter '' (this route takes: set, tags)"
    many = refusal("a=1&b=2&c=3&d=4&" + "e" * 100 + "=5")
    assert many is not None
    assert many.startswith("unknown query parameters 'a', 'b', 'c' and 2 more")
    long = refusal("e" * 100 + "=1")
    assert long is not None
    assert "e" * 41 not in long
    assert "…" in long
    newline = refusal("x%0Ay=1")  # a caller's name is repeated escaped: one line
    assert newline is not None
    assert "\n" not in newline
