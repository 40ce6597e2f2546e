"""Answer parity: tarscascade's QueryF (registry and node) against an oracle of TARS.

A randomized db_tars (hypothesis; derandomized in CI) with duplicates, invalid sets,
standby rows, traffic-off rows, odd present states and the framework's own servants; the
oracle (oracle.py) answers from the rows as the open-source registry would, and all six
QueryF methods must agree for every servant, caller, station and set id asked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tarscascade.catalog.queryf import handle_query
from tarscascade.cli.runtime import RegistryConfig, RegistryProcess
from tarscascade.dbtars import GuardPolicy, ImportOptions
from tarscascade.model import Category
from tarscascade.registry.core import RegistryOptions
from tarscascade.testing import eventually
from tarscascade.wire.idl.queryf import QUERY_F
from tests.integration.admin.node_harness import WAIT, node_agent
from tests.integration.dbtars.conftest import create_tars_db, drop_tars_db
from tests.integration.dbtars.oracle import Oracle, shape

pytestmark = pytest.mark.db

NODES = ("10.1.1.1", "10.1.1.2", "10.1.2.1", "10.2.1.1")
REGISTRY_NODE = "10.3.0.1"  # plain node (no set, no group) hosting tarsregistry itself
SERVERS = ("S1", "S2", "S3")
SERVANTS = ("A.S1.Obj", "A.Shared.Obj")
CALLERS = (*NODES, "10.9.9.9", REGISTRY_NODE)
STATIONS = ("s1", "s2", "zz")
SET_IDS = ("sz.a.1", "sz.a.*", "sz.b.2", "gz.a.1", "bad", "sz.*.1", "sz..a.1")
RULES = (("g1", "10.1.1.*"), ("g2", "10.1.2.1|10.2.1.*"), ("g3", "10.1.1.2|"))

node_conf = st.fixed_dictionaries(
    {
        "enable_group": st.sampled_from(["Y", "N", "y"]),
        "ip_group_name": st.sampled_from([None, "", "g1", "nope"]),
        "enable_set": st.sampled_from(["Y", "N"]),
        "set_name": st.sampled_from(["sz", "gz", "*", "", None]),
        "set_area": st.sampled_from(["a", "b", None]),
        "set_group": st.sampled_from(["1", "2", "*", None]),
    }
)
server_state = st.fixed_dictionaries(
    {
        "setting_state": st.sampled_from(["active", "active", "inactive"]),
        "present_state": st.sampled_from(["active", "active", "inactive", "activating"]),
        "flow_state": st.sampled_from(["active", "active", "inactive"]),
        "bak_flag": st.sampled_from([0, 0, 0, 1]),
    }
)
adapter = st.tuples(
    st.sampled_from(SERVANTS),
    st.sampled_from([1000, 1001]),
    st.sampled_from(["", " -w 5 -v 1", " -w 30", " -e 1", " -h"]),  # weights, auth, unparsable
)
fixture = st.fixed_dictionaries(
    {
        "nodes": st.fixed_dictionaries({n: node_conf for n in NODES}),
        "servers": st.dictionaries(
            st.tuples(st.sampled_from(SERVERS), st.sampled_from(NODES)),
            st.tuples(server_state, st.lists(adapter, min_size=1, max_size=2)),
            min_size=1,
            max_size=8,
        ),
        "registry_info": st.lists(
            st.tuples(
                st.sampled_from(
                    ["tars.tarsregistry.QueryObj", "tars.tarsAdminRegistry.AdminRegObj"]
                ),
                st.sampled_from(["active", "inactive"]),
                st.sampled_from(["10.3.0.1:17890", "10.3.0.2:17890"]),
            ),
            max_size=3,
            unique_by=lambda t: (t[0], t[2]),
        ),
        "registry_server": st.booleans(),
        "rules": st.lists(st.sampled_from(range(len(RULES))), unique=True, max_size=3),
        "priorities": st.lists(
            st.tuples(
                st.lists(st.sampled_from([1, 2, 3, 9]), max_size=3),
                st.sampled_from(["s1", "s2", ""]),
            ),
            max_size=3,
        ),
    }
)


def _insert(w: Any, table: str, row: dict[str, Any]) -> None:
    marks = ", ".join(["%s"] * len(row))
    w.sql(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", tuple(row.values()))


def _write(w: Any, fx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Replace db_tars's content with the fixture; returns the rows as the oracle reads them."""
    for t in ("t_server_conf", "t_adapter_conf", "t_registry_info", "t_group_priority"):
        w.sql(f"DELETE FROM {t}")
    w.sql("DELETE FROM t_server_group_rule")
    w.sql("ALTER TABLE t_server_group_rule AUTO_INCREMENT = 1")
    servers, adapters, info, rules, prios = [], [], [], [], []
    items = [((srv, node), v) for (srv, node), v in fx["servers"].items()]
    if fx["registry_server"]:  # tarsregistry's own rows (tars_servers.sql): QueryObj twice
        plain = (
            {
                "setting_state": "active",
                "present_state": "active",
                "flow_state": "active",
                "bak_flag": 0,
            },
            [],
        )
        items.append((("tarsregistry", REGISTRY_NODE), plain))
    for (srv, node), (state, ads) in items:
        conf = fx["nodes"].get(
            node,
            {
                "enable_group": "N",
                "ip_group_name": None,
                "enable_set": "N",
                "set_name": None,
                "set_area": None,
                "set_group": None,
            },
        )
        app = "tars" if srv == "tarsregistry" else "A"
        row = {"application": app, "server_name": srv, "node_name": node, **conf, **state}
        servers.append(row)
        cols = ", ".join(row)
        w.sql(
            f"INSERT INTO t_server_conf ({cols}) VALUES ({', '.join(['%s'] * len(row))})",
            tuple(row.values()),
        )
        if srv == "tarsregistry":
            ads = [("tars.tarsregistry.QueryObj", 17890, "")]
        for i, (servant, port, extra) in enumerate(ads):
            endpoint = f"tcp -h {node} -t 60000 -p {port}{extra}"
            a = {
                "application": app,
                "server_name": srv,
                "node_name": node,
                "adapter_name": f"ad{i}",
                "servant": servant,
                "endpoint": endpoint,
            }
            adapters.append(a)
            _insert(w, "t_adapter_conf", a)
    for servant, state, locator in fx["registry_info"]:
        host, port = locator.split(":")
        r = {
            "locator_id": locator,
            "servant": servant,
            "endpoint": f"tcp -h {host} -p {port} -t 60000",
            "present_state": state,
            "enable_group": "N",
            "tars_version": "3.0.19",
        }
        info.append(r)
        _insert(w, "t_registry_info", r)
    for gid, idx in enumerate(fx["rules"], start=1):
        name, allow = RULES[idx]
        rules.append({"group_id": gid, "group_name": name, "allow_ip_rule": allow})
        _insert(w, "t_server_group_rule", rules[-1])
    for order, (groups, station) in enumerate(fx["priorities"]):
        text = "|".join(map(str, groups))
        _insert(
            w,
            "t_group_priority",
            {"name": "p", "group_list": text, "list_order": order, "station": station},
        )
        prios.append(
            {
                "id": int(w.one("SELECT LAST_INSERT_ID()")),
                "group_list": text,
                "list_order": order,
                "station": station,
            }
        )
    return {
        "servers": servers,
        "adapters": adapters,
        "registry_info": info,
        "rules": rules,
        "priorities": prios,
    }


def _calls() -> list[tuple[str, str, str, str]]:
    """(method, object id, caller, argument) for every question asked."""
    out = []
    for obj in (
        *SERVANTS,
        "tars.tarsregistry.QueryObj",
        "tars.tarsAdminRegistry.AdminRegObj",
        "A.None.Obj",
    ):
        out.append(("findObjectById", obj, "10.9.9.9", ""))
        out.append(("findObjectById4Any", obj, "10.9.9.9", ""))
        for caller in CALLERS:
            out.append(("findObjectById4All", obj, caller, ""))
            out.append(("findObjectByIdInSameGroup", obj, caller, ""))
        for station in STATIONS:
            out.append(("findObjectByIdInSameStation", obj, "10.9.9.9", station))
        for set_id in SET_IDS:
            for caller in ("10.1.1.1", "10.9.9.9"):
                out.append(("findObjectByIdInSameSet", obj, caller, set_id))
    return out


def _oracle_answer(o: Oracle, method: str, obj: str, caller: str, arg: str) -> Any:
    if method == "findObjectById":
        return o.find_by_id(obj)
    if method == "findObjectById4Any":
        return o.find_4any(obj)
    if method in ("findObjectById4All", "findObjectByIdInSameGroup"):
        return o.find_in_group(obj, caller)
    if method == "findObjectByIdInSameStation":
        return o.find_in_station(obj, arg)
    return o.find_in_set(obj, arg, caller)


def _ours(answerer: Any, method: str, obj: str, caller: str, arg: str) -> Any:
    m = QUERY_F.methods[method]
    args = (
        (obj,)
        if method
        in (
            "findObjectById",
            "findObjectById4Any",
            "findObjectById4All",
            "findObjectByIdInSameGroup",
        )
        else (obj, arg)
    )
    ret, body, desc = handle_query(answerer, method, m.encode_args(*args), caller)
    assert ret == 0, desc
    decoded = m.decode_result(body)
    if method == "findObjectById":
        return (0, decoded[0], [])
    return decoded


@pytest.mark.slow
def test_queryf_parity_with_tars(tmp_path: Path) -> None:
    db = create_tars_db("sql")
    loop = asyncio.new_event_loop()
    cfg = RegistryConfig(
        db=f"sqlite:///{tmp_path}/registry.db",
        listen=("127.0.0.1", 0),
        http=None,
        options=RegistryOptions(tail_interval=0.05, reload_interval=0),
        tars_db=db.ro_url,
        # the loop idles: each example imports by an explicit full load, never guarded
        import_options=ImportOptions(poll_interval=3600, guard=GuardPolicy(enabled=False)),
    )
    rp = RegistryProcess(cfg)
    agent = None
    w = db.writer()
    try:
        loop.run_until_complete(rp.start())
        agent = node_agent("parity-node", [("127.0.0.1", rp.tars_port)])
        loop.run_until_complete(agent.start())
        calls = _calls()

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(fx=fixture)
        def check(fx: dict[str, Any]) -> None:
            rows = _write(w, fx)
            oracle = Oracle.build(**rows)
            assert rp.importer is not None
            assert rp.core is not None
            loop.run_until_complete(rp.importer.full_sync())
            core = rp.core

            async def converged() -> None:
                assert agent is not None
                await eventually(
                    lambda: all(
                        agent.catalog.version(c) == core.catalog.version(c)
                        for c in (Category.OBJECTS, Category.GROUPS)
                    ),
                    timeout=WAIT,
                    what="node converged",
                )

            loop.run_until_complete(converged())
            for method, obj, caller, arg in calls:
                want = oracle.normalize(obj, _oracle_answer(oracle, method, obj, caller, arg))
                dup = oracle.duplicated(obj)
                for where, answerer in (("registry", core.answerer), ("node", agent.answerer)):
                    got = shape(obj, _ours(answerer, method, obj, caller, arg), dup)
                    assert got == want, (where, method, obj, caller, arg)

        check()
    finally:
        if agent is not None:
            loop.run_until_complete(agent.aclose())
        loop.run_until_complete(rp.aclose())
        loop.close()
        drop_tars_db(db)
