#!/usr/bin/env node
/*
 * Calls a TARS servant with the real @tars/rpc client (Communicator + stringToProxy)
 * through a hand-written proxy class shaped like tars2node's output (compare
 * node_modules/@tars/registry/QueryFProxy.js): per method an $EN encoder (TARS), a $PE
 * encoder (TUP UniAttribute), $DE/$PD decoders and an $ER error mapper.
 *
 *   node rpc_client.js --obj "Test.HelloServer.HelloObj@tcp -h 127.0.0.1 -p 1234"
 *                      --func hello --args '["world"]'
 *                      [--calls N] [--parallel] [--timeout MS] [--oneway] [--tup 2|3]
 *                      [--locator "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p P"]
 *                      [--setdivision a.b.c] [--set a.b.c] [--context '{"k":"v"}']
 *
 *   --obj        object name, with endpoints (direct) or without (resolved via --locator)
 *   --func       hello(string) | add(int,int) | sleep(int) | fail(int) | tars_ping;
 *                any other name is sent with an empty sBuffer and no result decoding
 *   --args       JSON array of the in-params (default [])
 *   --calls      how many calls (default 1), one after the other unless --parallel
 *   --timeout    call timeout in ms (Communicator property "timeout"; default 3000)
 *   --oneway     per-call option packetType 1 (TARSONEWAY); prints {"ok":true,"oneway":true}
 *                once the request was written
 *   --tup        proxy version 2 or 3 (TUP): sets the ObjectProxy version, which is what
 *                both the request (iVersion) and the response decoder follow
 *   --locator    Communicator property "locator" (QueryF registry)
 *   --setdivision  enableset=y with this setdivision (client-wide set: the registry is
 *                asked with findObjectByIdInSameSet(obj, setdivision))
 *   --set        set name passed to stringToProxy (per-proxy set, same QueryF call)
 *   --context    per-call context map
 *
 * stdout: one JSON line per call, in call order:
 *   {"call":i,"ok":true,"ret":<value>,"endpoint":"tcp -h H -p P ..."}
 *   {"call":i,"ok":false,"code":N,"error":"...","endpoint":...}
 *   {"fatal":true,"ok":false,"error":"..."}   @tars/rpc threw outside any call (for
 *                                            instance decoding a malformed response)
 * Exit code: 0 when every call succeeded, 1 when some failed, 2 on usage errors,
 * 3 on a fatal error.
 */
"use strict";

var TarsStream = require("@tars/stream");
var TarsRpc = require("@tars/rpc");
var TarsError = TarsRpc.error;

// ---------------------------------------------------------------- arguments

function usage(msg) {
    process.stderr.write("usage error: " + msg + "\n");
    process.exit(2);
}

function parseArgs(argv) {
    var o = { obj: undefined, func: undefined, args: [], calls: 1, parallel: false, timeout: 3000,
        oneway: false, tup: 0, locator: undefined, setdivision: undefined, set: undefined, context: undefined };
    for (var i = 0; i < argv.length; i++) {
        var a = argv[i];
        var next = function () {
            if (i + 1 >= argv.length) usage(a + " needs a value");
            return argv[++i];
        };
        var json = function (s) {
            try { return JSON.parse(s); } catch (e) { usage(a + ": " + e.message); }
        };
        if (a === "--obj") o.obj = next();
        else if (a === "--func") o.func = next();
        else if (a === "--args") o.args = json(next());
        else if (a === "--calls") o.calls = parseInt(next(), 10);
        else if (a === "--parallel") o.parallel = true;
        else if (a === "--timeout") o.timeout = parseInt(next(), 10);
        else if (a === "--oneway") o.oneway = true;
        else if (a === "--tup") o.tup = parseInt(next(), 10);
        else if (a === "--locator") o.locator = next();
        else if (a === "--setdivision") o.setdivision = next();
        else if (a === "--set") o.set = next();
        else if (a === "--context") o.context = json(next());
        else usage("unknown argument: " + a);
    }
    if (!o.obj) usage("--obj is required");
    if (!o.func) usage("--func is required");
    if (!Array.isArray(o.args)) usage("--args must be a JSON array");
    if (!(o.calls >= 1)) usage("--calls must be >= 1");
    if (!(o.timeout >= 1)) usage("--timeout must be >= 1");
    if ([0, 1, 2, 3].indexOf(o.tup) < 0) usage("--tup must be 2 or 3");
    if (o.obj.indexOf("@") < 0 && !o.locator) usage("--obj without endpoints needs --locator");
    return o;
}

var opts = parseArgs(process.argv.slice(2));

// @tars/rpc decodes responses inside the socket's "data" handler without a try/catch: a
// malformed ResponsePacket (e.g. without the required status map, tag 7) throws there
// and would kill the process with a stack trace only. Report it as one JSON line instead
// (exit code 3) so the harness can tell a crash from a call failure.
process.on("uncaughtException", function (e) {
    process.stdout.write(JSON.stringify({ fatal: true, ok: false, error: String(e && e.message || e) }) + "\n");
    process.exit(3);
});

// ---------------------------------------------------------------- proxy class

var Test = {};

Test.HelloProxy = function () {
    this._name = undefined;
    this._worker = undefined;
};
Test.HelloProxy.prototype.setTimeout = function (iTimeout) { this._worker.timeout = iTimeout; };
Test.HelloProxy.prototype.getTimeout = function () { return this._worker.timeout; };
Test.HelloProxy.prototype.setVersion = function (iVersion) { this._worker.version = iVersion; };
Test.HelloProxy.prototype.getVersion = function () { return this._worker.version; };

function isTupVersion(v) {
    return v === TarsStream.Tup.TUP_SIMPLE || v === TarsStream.Tup.TUP_COMPLEX;
}

function makeError(data, message, code) {
    var request = data && data.request;
    return {
        request: request,
        response: {
            costtime: request ? request.costtime : 0,
            error: { code: code, message: message },
        },
    };
}

/*
 * defineMethod("hello", [{name:"name", type:"String"}], "String") builds what tars2node
 * writes out by hand for `string hello(string name)`:
 *
 *   var __Test_Hello$hello$EN = function (name) {
 *       var os = new TarsStream.TarsOutputStream(); os.writeString(1, name); return os.getBinBuffer();
 *   };
 *   var __Test_Hello$hello$PE = function (name, version) {
 *       var tup = new TarsStream.UniAttribute(); tup.tupVersion = version; tup.writeString("name", name); return tup;
 *   };
 *   var __Test_Hello$hello$DE = function (data) {   // TARS answer: ResponsePacket.sBuffer
 *       var is = new TarsStream.TarsInputStream(data.response.sBuffer);
 *       return {request: data.request, response: {costtime: ..., return: is.readString(0, true, "")}};
 *   };
 *   var __Test_Hello$hello$PD = function (data) {   // TUP answer: UniAttribute, key ""
 *       return {request: data.request, response: {costtime: ..., return: data.response.tup.readString("", "")}};
 *   };
 *   var __Test_Hello$hello$ER = function (data) { throw {request: ..., response: {costtime: ..., error: data.error}}; };
 *   Test.HelloProxy.prototype.hello = function (name) {
 *       var version = this._worker.version;
 *       if (version === 3 || version === 2)
 *           return this._worker.tup_invoke("hello", $PE(name, version), arguments[arguments.length - 1]).then($PD, $ER);
 *       return this._worker.tars_invoke("hello", $EN(name), arguments[arguments.length - 1]).then($DE, $ER);
 *   };
 */
var DEFAULTS = { String: "", Int32: 0 };

function defineMethod(func, params, ret) {
    var EN = function () {
        var os = new TarsStream.TarsOutputStream();
        for (var i = 0; i < params.length; i++) os["write" + params[i].type](i + 1, arguments[i]);
        return os.getBinBuffer();
    };
    var PE = function () {
        var version = arguments[params.length];
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = version;
        for (var i = 0; i < params.length; i++) tup["write" + params[i].type](params[i].name, arguments[i]);
        return tup;
    };
    var DE = function (data) {
        try {
            var response = { costtime: data.request.costtime };
            if (ret) {
                var is = new TarsStream.TarsInputStream(data.response.sBuffer);
                response["return"] = is["read" + ret](0, true, DEFAULTS[ret]);
            }
            return { request: data.request, response: response };
        } catch (e) {
            throw makeError(data, e.message, TarsError.CLIENT.DECODE_ERROR);
        }
    };
    var PD = function (data) {
        try {
            var response = { costtime: data.request.costtime };
            if (ret) response["return"] = data.response.tup["read" + ret]("", DEFAULTS[ret]);
            return { request: data.request, response: response };
        } catch (e) {
            throw makeError(data, e.message, TarsError.CLIENT.DECODE_ERROR);
        }
    };
    var ER = function (data) {
        throw { request: data.request, response: { costtime: data.request ? data.request.costtime : 0, error: data.error } };
    };
    Test.HelloProxy.prototype[func] = function () {
        var args = Array.prototype.slice.call(arguments, 0, params.length);
        var version = this._worker.version;
        if (isTupVersion(version)) {
            return this._worker.tup_invoke(func, PE.apply(null, args.concat([version])), arguments[arguments.length - 1]).then(PD, ER);
        }
        return this._worker.tars_invoke(func, EN.apply(null, args), arguments[arguments.length - 1]).then(DE, ER);
    };
}

defineMethod("hello", [{ name: "name", type: "String" }], "String");
defineMethod("add", [{ name: "a", type: "Int32" }, { name: "b", type: "Int32" }], "Int32");
defineMethod("sleep", [{ name: "ms", type: "Int32" }], null);
defineMethod("fail", [{ name: "code", type: "Int32" }], null);
defineMethod("tars_ping", [], "Int32");

// Any other function name: empty sBuffer, nothing decoded.
Test.HelloProxy.prototype.invokeRaw = function (func, property) {
    var version = this._worker.version;
    var DE = function (data) { return { request: data.request, response: { costtime: data.request.costtime } }; };
    var ER = function (data) {
        throw { request: data.request, response: { costtime: data.request ? data.request.costtime : 0, error: data.error } };
    };
    if (isTupVersion(version)) {
        var tup = new TarsStream.UniAttribute();
        tup.tupVersion = version;
        return this._worker.tup_invoke(func, tup, property).then(DE, ER);
    }
    return this._worker.tars_invoke(func, new TarsStream.BinBuffer(), property).then(DE, ER);
};

// ---------------------------------------------------------------- the calls

var client = TarsRpc.client;
client.setProperty("timeout", opts.timeout);
if (opts.locator) client.setProperty("locator", opts.locator);
if (opts.setdivision) {
    // setdivision first: setting enableset re-checks the division and turns set mode
    // back off when the division is not yet a valid a.b.c
    client.setProperty("setdivision", opts.setdivision);
    client.setProperty("enableset", "y");
}

var proxy;
try {
    proxy = client.stringToProxy(Test.HelloProxy, opts.obj, opts.set);
} catch (e) {
    usage("stringToProxy failed: " + e.message);
}
proxy.setTimeout(opts.timeout);
if (opts.tup) proxy.setVersion(opts.tup);

var known = ["hello", "add", "sleep", "fail", "tars_ping"].indexOf(opts.func) >= 0;
var failures = 0;

function endpointOf(request) {
    var ep = request && (request.RemoteEndpoint || (request.adapter && request.adapter.endpoint));
    return ep && typeof ep.toString === "function" ? ep.toString() : null;
}

function callOnce(i) {
    var property = { };
    if (opts.oneway) property.packetType = 1;
    if (opts.context) property.context = opts.context;
    var promise;
    try {
        promise = known ? proxy[opts.func].apply(proxy, opts.args.concat([property])) : proxy.invokeRaw(opts.func, property);
    } catch (e) {
        return Promise.resolve({ call: i, ok: false, code: null, error: "call threw: " + e.message });
    }
    return Promise.resolve(promise).then(function (data) {
        var r = data.response["return"];
        return { call: i, ok: true, ret: r === undefined ? null : r, endpoint: endpointOf(data.request) };
    }, function (data) {
        var err = (data && data.response && data.response.error) || {};
        var message = err.message !== undefined ? String(err.message) : String((data && data.message) || data);
        if (opts.oneway && message === "one way call do not need response") {
            // @tars/rpc "rejects" a one-way call as soon as it has been written
            return { call: i, ok: true, oneway: true, endpoint: endpointOf(data.request) };
        }
        return { call: i, ok: false, code: err.code === undefined ? null : err.code, error: message, endpoint: endpointOf(data && data.request) };
    });
}

function emit(result) {
    if (!result.ok) failures++;
    process.stdout.write(JSON.stringify(result) + "\n");
}

// Close our sockets gracefully (so one-way requests already written are not lost),
// bounded, then exit: the Communicator (and the registry client's own one) would
// otherwise keep the process alive.
function finish() {
    var sockets = [];
    Object.keys(client._workers).forEach(function (k) {
        var adapters = client._workers[k]._manager._adapters || [];
        adapters.forEach(function (ad) {
            (ad._vTrans || []).forEach(function (t) { if (t._socket && t._socket.end) sockets.push(t._socket); });
        });
    });
    var pending = sockets.length;
    var code = failures ? 1 : 0;
    if (!pending) return process.exit(code);
    sockets.forEach(function (s) {
        var counted = false;
        var done = function () {
            if (counted) return;
            counted = true;
            if (--pending === 0) process.exit(code);
        };
        if (s.destroyed || s.writableFinished) return done();
        s.once("finish", done);
        s.once("close", done);
        s.end();
    });
    setTimeout(function () { process.exit(code); }, 2000).unref();
}

var run;
if (opts.parallel) {
    var all = [];
    for (var i = 0; i < opts.calls; i++) all.push(callOnce(i));
    run = Promise.all(all).then(function (results) { results.forEach(emit); });
} else {
    run = (function loop(i) {
        if (i >= opts.calls) return Promise.resolve();
        return callOnce(i).then(function (r) { emit(r); return loop(i + 1); });
    })(0);
}
run.then(finish, function (e) {
    process.stderr.write("client failed: " + (e && e.stack || e) + "\n");
    process.exit(2);
});
