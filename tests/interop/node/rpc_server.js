#!/usr/bin/env node
/*
 * A TARS servant hosted by the real @tars/rpc server, without generated code: the
 * handler's onDispatch does what tars2node's generated *Imp.js does (decode the
 * arguments from sBuffer, or from a UniAttribute for TUP requests; encode the answer;
 * current.doResponse / current.sendErrorResponse).
 *
 *   node rpc_server.js [--servant Test.HelloServer.HelloObj] [--host 127.0.0.1]
 *                      [--port 0] [--idle-timeout 60000] [--quiet]
 *
 * Interface (module Test, interface Hello):
 *   string hello(string name);        // returns "hello " + name       (name: tag 1)
 *   int    add(int a, int b);         // returns a + b                 (a: tag 1, b: tag 2)
 *   void   sleep(int ms);             // answers after ms milliseconds (ms: tag 1)
 *   void   fail(int code);            // answers with framework error iRet = code
 *                                     // (optional; -99 TARSSERVERUNKNOWNERR when 0/absent)
 *   tars_ping                         // int 0 at tag 0, as tars2node generates it
 *   anything else                     // iRet -3 (FUNC_NOT_FOUND), as generated code does
 *
 * With --queryf-endpoint HOST:PORT (repeatable) the servant also answers the QueryF
 * lookups a @tars/rpc client makes through a locator (run it with --servant
 * tars.tarsregistry.QueryObj): findObjectById, findObjectById4Any, findObjectById4All,
 * findObjectByIdInSameGroup, findObjectByIdInSameSet, findObjectByIdInSameStation, for
 * any id, with activeEp = those endpoints (tcp, timeout 60000), inactiveEp = [],
 * return 0. A stand-in registry so the locator path can be smoke-tested node-to-node.
 *
 * stdout protocol (one line each):
 *   READY <port>                      once listening (port 0 = pick an ephemeral port)
 *   REQ <json>                        for every request dispatched (unless --quiet):
 *                                     {"func","servant","iVersion","cPacketType",
 *                                      "iMessageType","iRequestId","iTimeout",
 *                                      "context":{},"status":{},"sBuffer":"<hex>"}
 *   ERROR <message>                   if listening failed (exit code 1)
 *
 * Exits with code 0 on SIGTERM/SIGINT or when stdin closes.
 */
"use strict";

var TarsStream = require("@tars/stream");
var TarsRpc = require("@tars/rpc");
var TarsError = TarsRpc.error;

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
    var opts = { servant: "Test.HelloServer.HelloObj", host: "127.0.0.1", port: 0, idleTimeout: 60000, quiet: false,
        queryfEndpoints: [] };
    for (var i = 0; i < argv.length; i++) {
        var a = argv[i];
        var next = function () {
            if (i + 1 >= argv.length) throw new Error(a + " needs a value");
            return argv[++i];
        };
        if (a === "--servant") opts.servant = next();
        else if (a === "--host") opts.host = next();
        else if (a === "--port") opts.port = parseInt(next(), 10);
        else if (a === "--idle-timeout") opts.idleTimeout = parseInt(next(), 10);
        else if (a === "--quiet") opts.quiet = true;
        else if (a === "--queryf-endpoint") {
            var hp = /^(.+):([0-9]+)$/.exec(next());
            if (!hp) throw new Error("--queryf-endpoint needs HOST:PORT");
            opts.queryfEndpoints.push({ host: hp[1], port: parseInt(hp[2], 10) });
        }
        else throw new Error("unknown argument: " + a);
    }
    if (!(opts.port >= 0 && opts.port <= 65535)) throw new Error("bad --port");
    return opts;
}

var opts;
try {
    opts = parseArgs(process.argv.slice(2));
} catch (e) {
    process.stderr.write("usage error: " + e.message + "\n");
    process.exit(2);
}

function out(line) {
    process.stdout.write(line + "\n");
}

function mapToObject(m) {
    var o = {};
    if (m && typeof m.forEach === "function") {
        m.forEach(function (k, v) { o[k] = v; });
    }
    return o;
}

function isTup(current) {
    var v = current.getRequestVersion();
    return v === TarsStream.Tup.TUP_SIMPLE || v === TarsStream.Tup.TUP_COMPLEX;
}

// ---------------------------------------------------------------- the servant

var HelloImp = function () {
    this._name = undefined;
    this._worker = undefined;
};

HelloImp.prototype.initialize = function () {};

HelloImp.prototype.onDispatch = function (current, funcName, binBuffer) {
    if (!opts.quiet) {
        var o = current.getRequest();
        out("REQ " + JSON.stringify({
            func: funcName,
            servant: o.sServantName,
            iVersion: o.iVersion,
            cPacketType: o.cPacketType,
            iMessageType: o.iMessageType,
            iRequestId: o.iRequestId,
            iTimeout: o.iTimeout,
            context: mapToObject(o.context),
            status: mapToObject(o.status),
            sBuffer: o.sBuffer && o.sBuffer.length ? o.sBuffer.toNodeBuffer().toString("hex") : "",
        }));
    }
    if ("__" + funcName in this) {
        return this["__" + funcName](current, binBuffer);
    }
    return TarsError.SERVER.FUNC_NOT_FOUND;
};

// Answer helpers, shaped like tars2node's generated $RE functions.
function respond(current, ret, writeRet) {
    if (isTup(current)) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        if (writeRet) tup[writeRet]("", ret);
        current.doResponse(tup.encode());
    } else {
        var os = new TarsStream.TarsOutputStream();
        if (writeRet) os[writeRet](0, ret);
        current.doResponse(os.getBinBuffer());
    }
}

// Read in-params: [{name, tag, read: "String"|"Int32", def, require}]
function readParams(current, binBuffer, params) {
    var values = {};
    if (isTup(current)) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = current.getRequestVersion();
        tup.decode(binBuffer);
        params.forEach(function (p) {
            values[p.name] = tup["read" + p.read](p.name, p.require ? undefined : p.def);
        });
    } else {
        var is = new TarsStream.TarsInputStream(binBuffer);
        params.forEach(function (p) {
            values[p.name] = is["read" + p.read](p.tag, p.require, p.def);
        });
    }
    return values;
}

HelloImp.prototype.__tars_ping = function (current) {
    respond(current, 0, "writeInt32");
    return TarsError.SUCCESS;
};

HelloImp.prototype.__hello = function (current, binBuffer) {
    var p = readParams(current, binBuffer, [{ name: "name", tag: 1, read: "String", def: "", require: true }]);
    respond(current, "hello " + p.name, "writeString");
    return TarsError.SUCCESS;
};

HelloImp.prototype.__add = function (current, binBuffer) {
    var p = readParams(current, binBuffer, [
        { name: "a", tag: 1, read: "Int32", def: 0, require: true },
        { name: "b", tag: 2, read: "Int32", def: 0, require: true },
    ]);
    // int overflow wraps like C++ int would
    respond(current, (p.a + p.b) | 0, "writeInt32");
    return TarsError.SUCCESS;
};

HelloImp.prototype.__sleep = function (current, binBuffer) {
    var p = readParams(current, binBuffer, [{ name: "ms", tag: 1, read: "Int32", def: 0, require: true }]);
    setTimeout(function () { respond(current, null, null); }, Math.max(0, p.ms));
    return TarsError.SUCCESS;
};

HelloImp.prototype.__fail = function (current, binBuffer) {
    var p = readParams(current, binBuffer, [{ name: "code", tag: 1, read: "Int32", def: 0, require: false }]);
    var code = p.code || -99;
    current.sendErrorResponse(code, "fail requested with code " + code);
    return TarsError.SUCCESS;
};

// ---------------------------------------------------------------- stand-in QueryF

var EndpointF = require("@tars/registry/EndpointFTars.js").tars.EndpointF;

function queryfEndpointList() {
    var list = TarsStream.List(EndpointF);
    opts.queryfEndpoints.forEach(function (e) {
        var ep = new EndpointF();
        ep.host = e.host;
        ep.port = e.port;
        ep.timeout = 60000;
        ep.istcp = 1;
        list.push(ep);
    });
    return list;
}

// `int f(string id, [string x,] out vector<EndpointF> activeEp, out vector<EndpointF> inactiveEp)`
function queryfLookup(current, binBuffer, twoArgs) {
    if (!opts.queryfEndpoints.length || isTup(current)) return TarsError.SERVER.FUNC_NOT_FOUND;
    var is = new TarsStream.TarsInputStream(binBuffer);
    is.readString(1, true, "");
    if (twoArgs) is.readString(2, true, "");
    var first = twoArgs ? 3 : 2;
    var os = new TarsStream.TarsOutputStream();
    os.writeInt32(0, 0);
    os.writeList(first, queryfEndpointList());
    os.writeList(first + 1, TarsStream.List(EndpointF));
    current.doResponse(os.getBinBuffer());
    return TarsError.SUCCESS;
}

HelloImp.prototype.__findObjectById = function (current, binBuffer) {
    if (!opts.queryfEndpoints.length || isTup(current)) return TarsError.SERVER.FUNC_NOT_FOUND;
    new TarsStream.TarsInputStream(binBuffer).readString(1, true, "");
    var os = new TarsStream.TarsOutputStream();
    os.writeList(0, queryfEndpointList());
    current.doResponse(os.getBinBuffer());
    return TarsError.SUCCESS;
};
HelloImp.prototype.__findObjectById4Any = function (c, b) { return queryfLookup(c, b, false); };
HelloImp.prototype.__findObjectById4All = function (c, b) { return queryfLookup(c, b, false); };
HelloImp.prototype.__findObjectByIdInSameGroup = function (c, b) { return queryfLookup(c, b, false); };
HelloImp.prototype.__findObjectByIdInSameSet = function (c, b) { return queryfLookup(c, b, true); };
HelloImp.prototype.__findObjectByIdInSameStation = function (c, b) { return queryfLookup(c, b, true); };

// ---------------------------------------------------------------- start / stop

var server = TarsRpc.server.createServer(HelloImp);
var stopping = false;

function shutdown(code) {
    if (stopping) return;
    stopping = true;
    try {
        server.stop();
    } catch (e) {
        process.stderr.write("stop failed: " + e.message + "\n");
    }
    process.exit(code);
}

process.on("SIGTERM", function () { shutdown(0); });
process.on("SIGINT", function () { shutdown(0); });
process.stdin.on("end", function () { shutdown(0); });
process.stdin.on("error", function () { shutdown(0); });
process.stdin.resume();

try {
    server.start({
        name: opts.servant + "Adapter",
        servant: opts.servant,
        endpoint: "tcp -h " + opts.host + " -p " + opts.port + " -t " + opts.idleTimeout,
        protocol: "tars",
        maxconns: 1024,
    });
} catch (e) {
    out("ERROR " + e.message);
    process.exit(1);
}

// @tars/rpc's NetThread calls listen(port, host) without a callback and never reports
// the bound port; its net.Server is reachable at SimpleServer._server._adapters[0]
// ._netthread._listener, so wait for "listening" there and print the real port.
var listener = server._server._adapters[0]._netthread._listener;
function ready() { out("READY " + listener.address().port); }
if (listener.listening) ready();
else listener.once("listening", ready);
listener.once("error", function (e) {
    out("ERROR " + e.message);
    process.exit(1);
});
