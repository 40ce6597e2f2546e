#!/usr/bin/env node
/*
 * Ask a QueryF locator through the real @tars/registry client and print one JSON line.
 *
 *   node registry_query.js --locator "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p P"
 *        --obj App.Server.Obj [--method group|any|all|id|station|set] [--arg S]
 *        [--node-name N] [--timeout MS]
 *
 * Output: {"ok":true,"ret":N,"active":[EndpointF...],"inactive":[...]}
 *     or  {"ok":false,"code":N,"error":"..."}
 */
"use strict";

function parseArgs(argv) {
  const out = { method: "group", arg: "", nodeName: "", timeout: 10000 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (k === "--locator") { out.locator = v; i++; }
    else if (k === "--obj") { out.obj = v; i++; }
    else if (k === "--method") { out.method = v; i++; }
    else if (k === "--arg") { out.arg = v; i++; }
    else if (k === "--node-name") { out.nodeName = v; i++; }
    else if (k === "--timeout") { out.timeout = parseInt(v, 10); i++; }
    else { process.stdout.write(JSON.stringify({ ok: false, code: -1, error: "usage: " + k }) + "\n"); process.exit(2); }
  }
  if (!out.locator || !out.obj) { process.stdout.write(JSON.stringify({ ok: false, code: -1, error: "need --locator and --obj" }) + "\n"); process.exit(2); }
  return out;
}

function plain(list) {
  const items = list && list.value !== undefined ? list.value : list || [];
  return items.map((e) => (e && typeof e.toObject === "function" ? e.toObject() : e));
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const registry = require("@tars/registry");
  registry.setLocator(a.locator);
  registry.initialize();
  if (a.nodeName) registry._node_name = a.nodeName;
  const calls = {
    id: () => registry.findObjectById(a.obj),
    any: () => registry.findObjectById4Any(a.obj),
    all: () => registry.findObjectById4All(a.obj),
    group: () => registry.findObjectByIdInSameGroup(a.obj),
    station: () => registry.findObjectByIdInSameStation(a.obj, a.arg),
    set: () => registry.findObjectByIdInSameSet(a.obj, a.arg),
  };
  if (!calls[a.method]) throw new Error("unknown method " + a.method);
  const timer = setTimeout(() => {
    process.stdout.write(JSON.stringify({ ok: false, code: -7, error: "timeout" }) + "\n");
    process.exit(1);
  }, a.timeout);
  try {
    const res = await calls[a.method]();
    const r = res.response;
    let out;
    if (a.method === "id") out = { ok: true, ret: 0, active: plain(r.return), inactive: [] };
    else out = { ok: true, ret: r.return, active: plain(r.arguments.activeEp), inactive: plain(r.arguments.inactiveEp) };
    process.stdout.write(JSON.stringify(out) + "\n");
    clearTimeout(timer);
    process.exit(0);
  } catch (err) {
    const e = err && err.response ? err.response : err;
    const code = err && err.response && err.response.error ? err.response.error.code : -1;
    const msg = err && err.response && err.response.error ? err.response.error.message : String(e);
    process.stdout.write(JSON.stringify({ ok: false, code: code, error: msg }) + "\n");
    clearTimeout(timer);
    process.exit(1);
  }
}

main().catch((e) => { process.stdout.write(JSON.stringify({ ok: false, code: -1, error: String(e) }) + "\n"); process.exit(3); });
