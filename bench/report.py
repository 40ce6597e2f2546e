"""The README's results table from the saved results: ``python -m bench.report [--quick]``.

Reads ``bench/results/<name>-latest.json`` of every benchmark in the suite and prints a
Markdown table (figure, target or verdict) headed by the date, machine and commit the
figures were measured on. A benchmark without results is listed as not run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from bench.__main__ import SUITE
from bench.common import RESULTS, dig, verdict

Row = tuple[str, str, str]  # what, figure, target / verdict
R = dict[str, Any]


def _n(v: float) -> str:
    return f"{v:,.0f}"


def _ms(d: R) -> str:
    return f"p50 {d['p50']:g} ms, p99 {d['p99']:g} ms, max {d['max']:g} ms"


def _codec(r: R) -> list[Row]:
    return [
        (
            "codec: decode + re-encode EndpointF, per 100,000",
            f"{r['decode_plus_encode_per_100k_s']:.2f} s",
            r["target"],
        )
    ]


def _capacity(r: R) -> list[Row]:
    m = r["model"]
    rows: list[Row] = [
        (
            "capacity model, calibrated on "
            + " and ".join(str(c["nodes"]) for c in r["calibration"])
            + " nodes: CPU per write fixed + per node; per idle heartbeat; latency per node",
            f"{m['c_w_ms']:g} ms + {m['c_n_us']:g} µs × N; {m['c_hb_us']:g} µs × "
            f"{m['h_per_node_s']:g}/s × N; {m['d0_ms']:g} ms + {m['c_l_us']:g} µs × N",
            "—",
        )
    ]
    labels = {
        "idle_cpu_share": "idle registry CPU",
        "cpu_per_update_s": "registry CPU per write",
        "latency_p50_s": "paced change → last node p50",
    }
    for n, c in r["checks"].items():
        against = c["against_model"]
        figure = "; ".join(
            f"{labels[k]} {v['measured']:.4g} vs {v['predicted']:.4g}"
            f" ({v['measured_over_predicted']:g}×)"
            for k, v in against.items()
        )
        short = {"idle_cpu_share": "idle", "cpu_per_update_s": "write", "latency_p50_s": "p50"}
        verdicts = "; ".join(f"{short[k]} {v['verdict']}" for k, v in against.items())
        rows.append(
            (f"capacity model at {int(n):,} nodes: measured vs predicted", figure, verdicts)
        )
    return rows


def _tarsio(r: R) -> list[Row]:
    hot, conf = r["hot_paths"], r["conformance"]

    def row(what: str, cases: R) -> Row:
        vs = list(cases.values())
        ours = " / ".join(f"{v['ours_us']:.3g}" for v in vs)
        theirs = " / ".join(f"{v['tarsio_us']:.3g}" for v in vs)
        return (
            f"tarsio {r['tarsio_version']} vs ours: {what}",
            f"ours {ours} µs; tarsio {theirs} µs",
            "tarsio " + " / ".join(f"{v['speedup']:.2f}×" for v in vs) + " faster",
        )

    vectors = conf["vectors"].values()
    kinds = ", ".join(f"{k} {n}" for k, n in conf["mismatches_by_kind"].items())
    return [
        row(
            "RequestPacket decode (captured InSameGroup; 4Any; 4Any + its args)",
            hot["request_decode"],
        ),
        row("findObjectById4Any answer encode, 1 / 10 / 100 EndpointF", hot["endpoints_encode"]),
        row("findObjectById4Any answer decode, 1 / 10 / 100 EndpointF", hot["endpoints_decode"]),
        (
            "tarsio conformance: captured vectors decoded equal; round trips equal both ways; "
            "mismatches; malformed input accepted",
            f"{sum(v['decoded_equal'] for v in vectors)}/{len(vectors)}; "
            f"{conf['round_trip_equal_both_ways']}/{conf['round_trip_cases']}; "
            f"{len(conf['mismatches'])}{f' ({kinds})' if kinds else ''}; {len(conf['lenient'])}",
            r["verdict"],
        ),
    ]


def _transport(r: R) -> list[Row]:
    return [
        (
            f"transport: one server process, {v['connections']} connection(s), "
            f"{v['in_flight_per_connection']} in flight each",
            f"{_n(v['rps_median'])} replies/s",
            v["target"],
        )
        for v in r.values()
    ]


def _registry(r: R) -> list[Row]:
    rows: list[Row] = [
        (
            f"registry: start and serve {_n(r['endpoints'])} endpoints from SQLite",
            f"{r['start_to_serving_s_median']:.1f} s, {r['rss_after_load_mb_median']:.0f} MB RSS",
            f"{r['start_target']}; {r['rss_target']}",
        )
    ]
    rows += [
        (
            f"registry: QueryF InSameGroup, {v['connections']} connection(s)",
            f"{_n(v['answers_per_s_median'])} answers/s",
            v["target"],
        )
        for v in r["queryf"].values()
    ]
    return rows


def _store(r: R) -> list[Row]:
    m = r["median"]
    return [
        (
            f"store: load() of {_n(r['endpoints'])} endpoints from SQLite",
            f"{m['load_s']:.1f} s, {m['peak_rss_bytes'] / 2**20:.0f} MB peak",
            "MET" if r["targets"]["load_met"] else "MISSED",
        )
    ]


def _catalog(r: R) -> list[Row]:
    c = r["results"]
    return [
        (
            f"catalog: QueryF answers from the cache / cold ({_n(c['endpoints'])} endpoints)",
            f"{_n(c['hot_answers_per_s'])} / {_n(c['cold_answers_per_s'])} per s",
            "—",
        ),
        ("catalog: change events applied", f"{_n(c['apply_events_per_s'])} per s", "—"),
    ]


def _client(r: R) -> list[Row]:
    return [
        (
            "SDK: invoke through the proxy, 1 in flight / 100 in flight",
            f"{_n(r['proxy_sequential']['rps_median'])} / "
            f"{_n(r['proxy_100_in_flight']['rps_median'])} calls/s",
            r["proxy_sequential"]["target"],
        )
    ]


def _cascade(r: R) -> list[Row]:
    rows: list[Row] = []
    for key, v in r.items():
        if not key.startswith("nodes_"):
            continue
        n = v["nodes"]
        rows.append(
            (
                f"cascade: write acknowledged → applied on all {n} nodes, paced",
                _ms(v["paced"]["commit_to_all_applied_ms"]),
                v["paced"]["target"],
            )
        )
        rows.append(
            (
                f"cascade: the same, {v['burst']['mode']}",
                _ms(v["burst"]["commit_to_all_applied_ms"]),
                "—",
            )
        )
        if "registry_cpu_per_update_per_node_us" in v["paced"]:
            p = v["paced"]
            rows.append(
                (
                    f"cascade: {n} nodes, paced: registry CPU per update; per update and node;"
                    " node CPU per applied update (acks included)",
                    f"{p['registry_cpu_per_update_ms']} ms; "
                    f"{p['registry_cpu_per_update_per_node_us']} µs; "
                    f"{p['node_cpu_per_node_update_us']} µs",
                    "—",
                )
            )
        rows.append(
            (
                f"cascade: registry idle with {n} nodes heartbeating (after start; settled at"
                " the granted idle interval); drain wait (all acks)",
                f"{v['registry_idle']['cpu_percent']:.1f} % CPU"
                + (
                    f" ({settled['cpu_percent']:.1f} % settled, "
                    f"{settled['heartbeats_per_s']:.0f} heartbeats/s); "
                    if (settled := v.get("registry_idle_settled"))
                    else "; "
                )
                + _ms(v["drain"]["wait_acked_ms"]),
                "—",
            )
        )
    s = r["snapshot_1m"]
    rows.append(
        (
            f"cascade: full snapshot of {_n(s['endpoints'])} endpoints to a new node",
            f"{s['first_node']['synced_s']:.1f} s ({s['second_node_cached']['synced_s']:.1f} s "
            f"cached), node RSS {s['first_node']['node_max_rss_mb']:.0f} MB",
            f"{s['target_time']}; {s['target_rss']}",
        )
    )
    w = s["single_endpoint_change_on_the_wire"]
    rows.append(
        (
            "cascade: bytes on the wire per single-endpoint change per node (down / up)",
            f"{w['registry_to_node_bytes_per_change_per_node']} / "
            f"{w['node_to_registry_bytes_per_change_per_node']} B",
            "—",
        )
    )
    q = s["node_agent_queryf"]
    rows.append(
        (
            f"node agent holding {_n(s['endpoints'])} endpoints: QueryF, 1 / 50 connections",
            f"{_n(q['one_connection_pipelined']['answers_per_s_median'])} / "
            f"{_n(q['fifty_connections']['answers_per_s_median'])} answers/s",
            q["fifty_connections"]["target"],
        )
    )
    return rows


def _drain(r: R) -> list[Row]:
    n, push, poll = r["clients"], r["push"], r["polling_3s"]
    rows: list[Row] = []
    for v, label in ((push, "push"), (poll, "3 s polling")):
        start = v.get("from_drain_start", v.get("from_write_start", {}))
        cmd = v.get("drain_command")
        rows.append(
            (
                f"`tarscascade drain` → the last of {n} clients stops calling the endpoint, "
                f"{label}: from the drain's start; after it returned (late calls)",
                f"p50 {start.get('p50_ms', 0):g} ms, p99 {start.get('p99_ms', 0):g} ms; "
                f"p99 {v['p99_ms']:g} ms ({sum(v['late_calls'])} calls)"
                + (f"; the command took p50 {cmd['p50_ms']:g} ms" if cmd else ""),
                r["verdict"] if v is push else "—",
            )
        )
    return rows


def _seen(r: R) -> list[Row]:
    n = r["clients"]
    rows: list[Row] = []
    for mode, label in (("push", "push"), ("polling_3s", "3 s polling")):
        for stream in ("paced", "back_to_back"):
            v = r[mode][stream]
            rows.append(
                (
                    f"write acknowledged → seen by all {n} SDK clients, {label}, "
                    f"{v['updates']} updates {stream.replace('_', ' ')}",
                    _ms(v["ack_to_last_client_ms"]),
                    r["verdict"] if (mode, stream) == ("push", "paced") else "—",
                )
            )
    return rows


def _ratio(etcd: float, cascade: float) -> str:
    return f"etcd/cascade {etcd / cascade:.2f}×" if cascade > 0 else "—"


def _etcd(r: R) -> list[Row]:
    """Summary rows; the side-by-side table is :func:`etcd_table`."""
    rows: list[Row] = []
    for key, v in r.items():
        if not key.startswith("consumers_"):
            continue
        w, c, e = v["consumers"], v["cascade"], v["etcd"]
        cp, ep = c["paced"]["issued_to_all_ms"], e["paced"]["issued_to_all_ms"]
        rows.append(
            (
                f"vs etcd (native gRPC), {w} consumers, paced: write issued → "
                "seen by all, p50 / p99 (cascade; etcd)",
                f"{cp['p50']:g} / {cp['p99']:g} ms; {ep['p50']:g} / {ep['p99']:g} ms",
                f"p99 {_ratio(ep['p99'], cp['p99'])}; every figure: the table below",
            )
        )
    return rows


def _f(v: float, unit: str) -> str:
    if not unit:
        return f"{v:,.0f}"
    if unit == "B":
        return f"{v / 1000:,.1f} KB"
    if unit == "%":
        return f"{v:.2f} %"
    return f"{v:,.3g} {unit}" if v < 100 else f"{v:,.0f} {unit}"


#: the side-by-side rows: label, path into one system's results, unit, issue 17's target
ETCD_ROWS: list[tuple[str, tuple[str, ...], str, str]] = [
    ("write answered p50, issued → answered (paced)", ("paced", "write_answered_ms", "p50"),
     "ms", "≤ 2 ms with no nodes (writes row)"),
    ("central server CPU per update", ("paced", "server_cpu_ms_per_update_net"), "ms", "—"),
    ("… per update per consumer", ("paced", "server_cpu_us_per_update_per_consumer"), "µs",
     "≤ 8 µs at 1,000"),
    ("consumer CPU per applied event", ("paced", "consumer_cpu_us_per_event"), "µs",
     "≤ 15 µs"),
    ("last consumer has the write, from issued, p50 (paced)",
     ("paced", "issued_to_all_ms", "p50"), "ms", "—"),
    ("… p99", ("paced", "issued_to_all_ms", "p99"), "ms", "—"),
    ("… from answered, p99", ("paced", "answered_to_all_ms", "p99"), "ms", "—"),
    ("probe consumer (own process, normal priority), from issued, p99",
     ("paced", "issued_to_probe_ms", "p99"), "ms", "—"),
    ("burst: every write delivered to every consumer", ("burst", "all_delivered_ms"), "ms",
     "—"),
    ("idle server CPU, consumers connected", ("idle", "server_cpu_percent"), "%",
     "≤ 1 % at 1,000"),
    ("cold start: all consumers synced", ("cold_start", "all_synced_s"), "s", "≤ etcd's"),
    ("cold start: bytes sent per consumer", ("cold_start", "bytes_per_consumer"), "B",
     "≤ etcd's"),
    ("cold start: sessions the server dropped (not heard from in time), taken up again",
     ("cold_start", "sessions_dropped"), "", "0"),
    ("… then until every consumer is connected and steady for 5 s",
     ("cold_start", "settled_s"), "s", "—"),
    ("reconnect storm, fresh consumers: all back", ("storm_fresh", "all_back_s"), "s", "—"),
    ("… sessions the server dropped during it", ("storm_fresh", "sessions_dropped"), "", "0"),
    ("reconnect storm, resuming (held versions / revision): all back",
     ("storm_resume", "all_back_s"), "s", "—"),
    ("server RSS", ("server_rss_mb",), "MB", "—"),
]  # fmt: skip


def etcd_table(r: R) -> str:
    """Every compared figure, etcd and cascade side by side, per W (issue 17's table)."""
    runs = [v for k, v in r.items() if k.startswith("consumers_")]
    if not runs:
        return ""
    head = "| figure | " + " | ".join(
        f"W={v['consumers']:,} etcd | W={v['consumers']:,} cascade" for v in runs
    )
    lines = [head + " | target |", "|---" * (2 + 2 * len(runs)) + "|"]
    for label, path, unit, target in ETCD_ROWS:
        cells = [_f(dig(v[system], path), unit) for v in runs for system in ("etcd", "cascade")]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")
    slope = r.get("server_cpu_us_per_update_per_consumer")
    if slope:
        # one figure for all W: under the first pair of columns, the others left empty
        cells = [_f(slope["etcd"], "µs"), _f(slope["cascade"], "µs")]
        cells += [""] * (2 * len(runs) - 2)
        lines.append(
            "| central CPU per update per extra consumer (slope between the two W) | "
            + " | ".join(cells)
            + " | ≤ 8 µs |"
        )
    return "\n".join(lines) + "\n"


def _storm(r: R) -> list[Row]:
    n = r["nodes"]
    rows: list[Row] = []
    for key, label in (
        ("blip", "a network blip of {cut_s:g} s with {writes} writes"),
        ("restart_graceful", "a registry restart (graceful)"),
        ("restart_kill", "a registry restart (SIGKILL)"),
    ):
        v = r[key]
        rows.append(
            (
                f"reconnect storm, {n} nodes, {label.format(**v)}: all in sync after; "
                "registry peak RSS; full snapshots sent",
                f"{v['sync_s_median']:.2f} s ({v['sync_after_last_reconnect_s_median']:.2f} s "
                f"after the last reconnect); {v['registry_peak_rss_mb_median']:.0f} MB; "
                f"{v['snapshots_sent_max']}",
                f"sync {v['target_sync']}; snapshots {v['target_snapshots']}",
            )
        )
    b = r.get("beyond_window")
    if b:
        rows.append(
            (
                f"reconnect storm, {n} nodes, an outage beyond the change-log window "
                f"({b['writes_during_cut']:,} writes)",
                f"{b['sync_s']:.1f} s; {b['registry_peak_rss_mb']:.0f} MB; "
                f"{b['snapshots_sent']} snapshots",
                "—",
            )
        )
    return rows


def _claims(verdicts: R) -> str:
    met = sum(1 for x in verdicts.values() if "MET" in x and "MISSED" not in x)
    return f"{met}/{len(verdicts)} no-worse-than-60-s checks MET (CPU, requests, bytes, staleness)"


def _load(r: R) -> list[Row]:
    rows: list[Row] = []
    for key, v in r.items():
        if not key.startswith("k_"):
            continue
        t, k = v["table"], v["clients"]
        for mode, label in (
            ("direct_60", "every client asks the registry every 60 s (open-source TARS)"),
            ("direct_3", "every client asks the registry every 3 s"),
            ("cascade_push", "the cascade (clients ask their node; 1 write/s pushed)"),
        ):
            m = t[mode]
            stale = m["worst_staleness_s"]
            poll = t["cascade_poll_3"]["worst_staleness_s"]
            stale_s = (
                f"{stale:.3f} s push, {poll:.1f} s polling"
                if mode == "cascade_push"
                else (f"{stale:.1f} s")
            )
            rows.append(
                (
                    f"registry load, {k:,} clients × 100 objects, {label}: CPU s/min; "
                    "requests/min; bytes/min; worst staleness",
                    f"{m['registry_cpu_s_per_min']:.2f}; "
                    f"{m['queryf_requests_per_min'] + m['cascade_requests_per_min']:,.0f}; "
                    f"{m['bytes_per_min'] / 1e6:.2f} MB; {stale_s}",
                    "—",
                )
            )
        for base in ("direct_60", "direct_3"):
            q = v["ratios"][f"{base}/cascade"]
            rows.append(
                (
                    f"registry load ratio, {k:,} clients: {base.replace('_', ' every ')} s ÷ "
                    "cascade (CPU; requests; bytes)",
                    f"{q['registry_cpu_s_per_min']}×; {q['requests_per_min']}×; "
                    f"{q['bytes_per_min']}×",
                    _claims(v["verdicts"]) if base == "direct_60" else "—",
                )
            )
    return rows


def _relay(r: R) -> list[Row]:
    return [
        (
            f"relay -> registry bytes/s, {r['leaves']:,} leaves under one relay, "
            f"{r['writes_per_s']:g} writes/s (acks: a floor; heartbeats: every leaf)",
            f"{r['relay_to_registry_bytes_s'] / 1000:,.1f} KB/s",
            r["verdict"],
        )
    ]


def _disk(r: R) -> list[Row]:
    return [
        (
            f"node disk copy, {r['endpoints']:,} endpoints: worst event-loop stall while a "
            "new image is written (baseline: the whole replica encoded in one thread call)",
            f"{r['worst_stall_ms_image_write']:.1f} ms ({r['image_mb']:.0f} MB in "
            f"{r['image_write_s']:.1f} s); baseline "
            f"{r['worst_stall_ms_whole_encode_baseline']:.0f} ms; idle "
            f"{r.get('worst_stall_ms_idle', float('nan')):.1f} ms",
            r["verdict"],
        ),
        (
            "node disk copy: journal bytes per single-endpoint change; worst stall of an append",
            f"{r['journal_bytes_per_change']} B; {r['worst_stall_ms_journal_append']:.1f} ms",
            "—",
        ),
    ]


def _chaos(r: R) -> list[Row]:
    t = r["totals"]
    faults: dict[str, int] = {}
    ops = acked = 0
    for rnd in r["rounds"]:
        for k, v in rnd["faults"].items():
            faults[k] = faults.get(k, 0) + v
        ops += sum(rnd["ops"].values())
        acked += rnd["writes"]["acked"]
    shown = ", ".join(f"{k} {v}" for k, v in sorted(faults.items()))
    return [
        (
            f"chaos: registry + 2 nodes + relay + leaf behind fault proxies, "
            f"{len(r['rounds'])} rounds: ops (acked); faults; convergence p50 / max",
            f"{ops} ({acked}); {shown}; {r['convergence_s']['p50']:.2f} / "
            f"{r['convergence_s']['max']:.2f} s",
            f"lost {t['lost']}, resurrected {t['resurrected']}, time travel "
            f"{t['time_travel']}, empty {t['empty']} (target 0)",
        )
    ]


def _dbtars(r: R) -> list[Row]:
    lat, v, st, full = r["latency_s"], r["verdicts"], r["steady"], r["full_load"]
    n = f"{r['adapter_rows']:,} adapter rows, {r['agents']} nodes"
    rows: list[Row] = []
    for key, label, verdict_key in (
        ("flip", "state flip (stop/start)", "flip_p99"),
        ("new_server", "new server (deploy + start)", "new_server_p99"),
        ("undeploy", "undeploy (stop + delete)", "undeploy_p99"),
        ("adapter_delete", "adapter delete by id", "adapter_delete_p99"),
        ("server_removal", "whole-server removal", "server_removal_p99"),
        ("idc_rule", "IDC rule edit", "idc_rule_p99"),
    ):
        d = lat[key]
        figure = f"p50 {d['p50']:g} s, p99 {d['p99']:g} s (TARS: {r['tars'][key]})"
        rows.append((f"db_tars ({n}): {label} → served by every node", figure, v[verdict_key]))
    thirds = ", ".join(f"{x * 100:.1f}" for x in st.get("registry_cpu_share_per_window", []))
    rows.append(
        (
            f"db_tars: steady state, {st['tarsnodes']:,} tarsnodes heartbeating"
            f" ({st['seconds']:g} s; per third in brackets)",
            f"{st['registry_cpu_share'] * 100:.1f} % of a core"
            f" ({thirds}),"
            f" {st['cascade_events']} events,"
            f" {st['db_queries_per_s']:g} queries/s, {st['db_rows_read_per_s']:g} rows/s",
            f"{v['steady_cpu']}; events {v['steady_events']}",
        )
    )
    rows.append(
        (
            f"db_tars: full load + diff of {full['endpoints']:,} endpoints"
            f" (median of {len(full.get('load_s_each', [0]))})",
            f"{full['load_s']:.2f} s ({full['select_s']:.2f} s of SELECTs)",
            v["full_load"],
        )
    )
    return rows


def _suite(r: R) -> list[Row]:
    bound = r["bound_s"]
    ok = "MET" if r["total_s"] < bound else "MISSED"
    return [
        (
            "the whole suite, one run (`python -m bench`)",
            f"{r['total_s'] / 60:.1f} min",
            f"{ok} (target < {bound / 60:g} min)",
        )
    ]


def _cli(r: R) -> list[Row]:
    return [
        (
            f"cli: `{name}`, a fresh process (python -c pass: "
            f"{r['python -c pass']['median_ms']:g} ms)",
            f"{v['median_ms']:g} ms (min {v['min_ms']:g})",
            v.get("target", "—"),
        )
        for name, v in r.items()
        if name.startswith("tarscascade")
    ]


def _writes(r: R) -> list[Row]:
    one, many = r["single"], r["batch"]
    lat, cpu = one["latency_ms"], one["registry_cpu_ms_per_write"]
    return [
        (
            "writes: admin API PATCH of one endpoint, issued -> answered (no nodes; SQLite,"
            " durable); registry CPU per write",
            f"p50 {lat['p50']:g} ms, p99 {lat['p99']:g} ms; {cpu:g} ms",
            f"{r['targets']['single_p50']}; CPU {r['targets']['single_cpu']}",
        ),
        (
            f"writes: POST /v1/batch of {many['endpoints_per_request']} endpoint updates, per"
            " request; per endpoint: latency, registry CPU",
            f"p50 {many['latency_ms']['p50']:g} ms; {many['latency_ms_per_endpoint']:g} ms,"
            f" {many['registry_cpu_ms_per_endpoint']:g} ms",
            "—",
        ),
    ]


def _listing(r: R) -> list[Row]:
    n = _n(r["endpoints"])
    rows: list[Row] = [
        (
            f"listing: worst QueryF lateness while GET /v1/objects lists {n} endpoints, before",
            f"{r['before_one_request']['queryf_worst_late_ms']:g} ms (one request)",
            "—",
        )
    ]
    for key, what in (("after_cold", "first listing"), ("after_warm", "listed again")):
        v = r[key]
        median = v["queryf_worst_late_ms"]
        each = v.get("worst_late_ms_each", [median])
        # each row's own verdict on its worst repeat (the saved one judges all rows)
        limit = str(r["target"]).rsplit("<", 1)[-1].strip(" )")
        own = verdict(max(each), float(limit)) if "<" in str(r["target"]) else str(r["target"])
        rows.append(
            (
                f"listing: the same, paginated ({what}, {v['requests']} pages; "
                f"median of {len(each)} runs, worst run in brackets)",
                f"{median:g} ms ({max(each):g} ms)",
                own,
            )
        )
    return rows


def _dashboard(r: R) -> list[Row]:
    return [
        (
            f"dashboard at {_n(r['nodes'])} nodes: {name.replace('_', ' ')}",
            f"{v['ms']:g} ms",
            v["target"],
        )
        for name, v in r.items()
        if isinstance(v, dict)
    ]


def _tier(r: R) -> list[Row]:
    rows: list[Row] = []
    for backend in ("mariadb", "postgresql"):
        v = r.get(backend)
        if v is None:
            continue
        if "skipped" in v:
            rows.append((f"tier ({backend})", f"skipped: {v['skipped']}", "—"))
            continue
        p, i, f = v["propagation"], v["idle"], v["failover"]
        on_b, on_a = p["nodes_on_b"], p["baseline_nodes_on_a"]
        rows.append(
            (
                f"tier ({backend}), 3 registries on one database: write through A's admin API "
                f"→ applied on all {on_b['nodes']} nodes of B, {p['writes_per_s']:g} writes/s "
                "(A's own nodes: p99)",
                _ms(on_b["issued_to_all_applied_ms"])
                + f" ({on_a['issued_to_all_applied_ms']['p99']:g} ms)",
                p["target"],
            )
        )
        rows.append(
            (
                f"tier ({backend}): idle registry CPU, {i['nodes_connected_to_b']} nodes "
                "connected (the two others, no nodes)",
                f"{i['cpu_percent_b_100_nodes']:.2f} % ({i['cpu_percent_a_no_nodes']:.2f} %, "
                f"{i['cpu_percent_c_no_nodes']:.2f} %) of a core",
                i["target"],
            )
        )
        t = f["targets"]
        resync = "—" if f["resync_s"] is None else f"{f['resync_s']:.2f} s"
        judge = "—" if f["judge_failover_s"] is None else f"{f['judge_failover_s']:.1f} s"
        rows.append(
            (
                f"tier ({backend}): SIGKILL of 1 of 3 registries "
                f"({'the liveness judge' if f['killed_was_judge'] else 'not the judge'}), "
                f"{f['nodes']} nodes, {f['writes_per_s']:g} writes/s: endpoints turned inactive;"
                " snapshots; every node in sync after; node liveness changes; judge taken over",
                f"{f['endpoints_turned_inactive']}; {f['snapshots_received_after_kill']}; "
                f"{resync}; {f['liveness_changes']}; {judge}",
                f"inactive {t['inactive']}; snapshots {t['snapshots']}; sync {t['resync']}; "
                f"liveness {t['liveness_changes']}",
            )
        )
    return rows


EXTRACT: dict[str, Callable[[R], list[Row]]] = {
    "codec": _codec,
    "catalog": _catalog,
    "store": _store,
    "transport": _transport,
    "registry": _registry,
    "client": _client,
    "cascade": _cascade,
    "drain": _drain,
    "seen": _seen,
    "etcd": _etcd,
    "storm": _storm,
    "load": _load,
    "relay": _relay,
    "disk": _disk,
    "chaos": _chaos,
    "dbtars": _dbtars,
    "cli": _cli,
    "writes": _writes,
    "listing": _listing,
    "dashboard": _dashboard,
    "tier": _tier,
    "capacity": _capacity,
    "tarsio": _tarsio,
    "suite": _suite,
}


def _commits(commits: dict[str, list[str]]) -> str:
    if len(commits) <= 1:
        return next(iter(commits), "?")
    return ", ".join(f"{c} ({', '.join(names)})" for c, names in commits.items())


def table(quick: bool) -> str:
    rows: list[Row] = []
    machine: R = {}
    commits: dict[str, list[str]] = {}  # commit -> benchmarks measured on it
    dates: set[str] = set()
    for name in [*SUITE, "suite"]:
        path = RESULTS / f"{name}{'-quick' if quick else ''}-latest.json"
        if not path.exists():
            rows.append((name, "not run", "—"))
            continue
        doc = json.loads(path.read_text())
        machine = machine or doc["machine"]
        dates.add(doc["machine"].get("date", "?")[:10])
        commits.setdefault(doc["machine"].get("commit", "?"), []).append(name)
        extract = EXTRACT.get(name)
        if "skipped" in doc["results"]:
            rows.append((name, f"skipped: {doc['results']['skipped']}", "—"))
            continue
        try:
            rows += extract(doc["results"]) if extract else [(name, "see JSON", "—")]
        except (KeyError, TypeError) as exc:
            rows.append((name, f"unreadable results ({exc!r})", "—"))
    head = (
        f"Measured {' to '.join(sorted(dates)[:: max(1, len(dates) - 1)]) or '?'} at commit "
        f"{_commits(commits)}: "
        f"{machine.get('cpus', '?')} cores ({machine.get('cpu_model', '?')}), "
        f"{machine.get('memory_gb', '?')} GB, Python {machine.get('python', '?')}"
        f"{' (quick mode)' if quick else ''}.\n\n"
        "| benchmark | figure | target |\n|---|---|---|\n"
    )
    body = head + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows) + "\n"
    path = RESULTS / f"etcd{'-quick' if quick else ''}-latest.json"
    if path.exists():
        results = json.loads(path.read_text())["results"]
        if "skipped" not in results:
            body += (
                "\nAgainst etcd, side by side (`bench_etcd`: etcd through its native gRPC API, "
                "the cascade through its admin HTTP API; medians over rounds):\n\n"
                + etcd_table(results)
            )
    return body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="from the --quick results")
    print(table(ap.parse_args(argv).quick), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
