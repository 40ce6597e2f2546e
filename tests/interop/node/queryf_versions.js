#!/usr/bin/env node
/*
 * Asks a QueryF servant findObjectById4Any in TUP version 2 or 3 through the real
 * @tars/rpc client (a tars2node-shaped proxy: tup_invoke + UniAttribute), or in JSON
 * (version 5) with @tars/rpc's own RequestPacket / ResponsePacket codec (RequestF.js)
 * over a plain socket: @tars/rpc 2.0.15 sends versions 1, 2 and 3 only.
 *
 *   node queryf_versions.js --port P --servant tars.tarsregistry.QueryObj
 *                           --id Test.HelloServer.HelloObj --version 2|3|5
 *                           [--capture]
 *
 * stdout, one line:
 *   {"ok":true,"ret":0,"activeEp":[{...EndpointF}],"inactiveEp":[...],"request":"<hex>"}
 *   {"ok":false,"code":N,"error":"..."}
 * For TUP the reply is read the way generated code reads it: `readInt32("")` and
 * `readList("activeEp", List(EndpointF))`, which in version 2 looks each value up by
 * its exact type name ("int32", "List<tars.EndpointF>"). For JSON every EndpointF
 * field must be present with a JSON number/string of the right type.
 * --capture adds "request": the whole request frame in hex (version 5: as written;
 * versions 2/3: the UniAttribute @tars/stream encoded, i.e. the sBuffer).
 */
"use strict";

var net = require("net");
var TarsStream = require("@tars/stream");
var TarsRpc = require("@tars/rpc");
var RequestF = require("@tars/rpc/core/rpc-tars/RequestF.js").tars;

var opts = { port: 0, servant: "", id: "", version: 0, capture: false };
var argv = process.argv.slice(2);
for (var i = 0; i < argv.length; i++) {
    var a = argv[i];
    if (a === "--port") opts.port = parseInt(argv[++i], 10);
    else if (a === "--servant") opts.servant = argv[++i];
    else if (a === "--id") opts.id = argv[++i];
    else if (a === "--version") opts.version = parseInt(argv[++i], 10);
    else if (a === "--capture") opts.capture = true;
    else { process.stderr.write("unknown argument " + a + "\n"); process.exit(2); }
}
if (!opts.port || !opts.servant || !opts.id || [2, 3, 5].indexOf(opts.version) < 0) {
    process.stderr.write("usage: --port P --servant S --id OBJ --version 2|3|5\n");
    process.exit(2);
}

function out(o) {
    process.stdout.write(JSON.stringify(o) + "\n");
    process.exit(o.ok ? 0 : 1);
}
process.on("uncaughtException", function (e) { out({ ok: false, fatal: true, error: String(e && e.message || e) }); });

// ---------------------------------------------------------------- EndpointF (tars2node shape)
var FIELDS = [
    ["host", "String", 0, true], ["port", "Int32", 1, true], ["timeout", "Int32", 2, true],
    ["istcp", "Int32", 3, true], ["grid", "Int32", 4, true], ["groupworkid", "Int32", 5, false],
    ["grouprealid", "Int32", 6, false], ["setId", "String", 7, false], ["qos", "Int32", 8, false],
    ["bakFlag", "Int32", 9, false], ["weight", "Int32", 11, false], ["weightType", "Int32", 12, false],
    ["authType", "Int32", 13, false], ["nodeName", "String", 14, false],
];
var EndpointF = function () {
    var self = this;
    FIELDS.forEach(function (f) { self[f[0]] = f[1] === "String" ? "" : 0; });
    this._classname = "tars.EndpointF";
};
EndpointF._classname = "tars.EndpointF";
EndpointF._write = function (os, tag, value) { os.writeStruct(tag, value); };
EndpointF._read = function (is, tag, def) { return is.readStruct(tag, true, def); };
EndpointF._readFrom = function (is) {
    var tmp = new EndpointF();
    FIELDS.forEach(function (f) { tmp[f[0]] = is["read" + f[1]](f[2], f[3], f[1] === "String" ? "" : 0); });
    return tmp;
};
EndpointF.prototype._writeTo = function (os) {
    var self = this;
    FIELDS.forEach(function (f) { os["write" + f[1]](f[2], self[f[0]]); });
};
EndpointF.new = function () { return new EndpointF(); };
EndpointF.create = function (is) { return EndpointF._readFrom(is); };

function plain(ep) {
    var o = {};
    FIELDS.forEach(function (f) { o[f[0]] = ep[f[0]]; });
    return o;
}

function fromJson(o, where) {
    if (o === null || typeof o !== "object" || Array.isArray(o)) throw new Error(where + ": not an object");
    FIELDS.forEach(function (f) {
        var v = o[f[0]];
        var ok = f[1] === "String" ? typeof v === "string" : Number.isInteger(v);
        if (!ok) throw new Error(where + "." + f[0] + ": " + JSON.stringify(v));
    });
    return plain(o);
}

// ---------------------------------------------------------------- TUP through @tars/rpc
var QueryFProxy = function () { this._name = undefined; this._worker = undefined; };
QueryFProxy.prototype.setTimeout = function (t) { this._worker.timeout = t; };
QueryFProxy.prototype.getTimeout = function () { return this._worker.timeout; };
QueryFProxy.prototype.setVersion = function (v) { this._worker.version = v; };
QueryFProxy.prototype.getVersion = function () { return this._worker.version; };
QueryFProxy.prototype.findObjectById4Any = function (id, property) {
    var tup = new TarsStream.UniAttribute();
    tup.tupVersion = this._worker.version;
    tup.writeString("id", id);
    captured = tup.encode().toNodeBuffer().toString("hex");
    return this._worker.tup_invoke("findObjectById4Any", tup, property).then(function (data) {
        var t = data.response.tup;
        return {
            ret: t.readInt32("", 0),
            activeEp: t.readList("activeEp", TarsStream.List(EndpointF)).value.map(plain),
            inactiveEp: t.readList("inactiveEp", TarsStream.List(EndpointF)).value.map(plain),
        };
    }, function (data) {
        var err = (data && data.response && data.response.error) || {};
        throw { code: err.code, message: err.message };
    });
};
var captured;

function viaRpc() {
    var client = TarsRpc.client;
    client.setProperty("timeout", 5000);
    var proxy = client.stringToProxy(QueryFProxy, opts.servant + "@tcp -h 127.0.0.1 -p " + opts.port);
    proxy.setVersion(opts.version);
    proxy.findObjectById4Any(opts.id, {}).then(function (r) {
        r.ok = true;
        if (opts.capture) r.request = captured;
        out(r);
    }, function (e) {
        out({ ok: false, code: e && e.code, error: String(e && e.message || e) });
    });
}

// ---------------------------------------------------------------- JSON over a socket
function viaJson() {
    var req = new RequestF.RequestPacket();
    req.iVersion = 5;
    req.cPacketType = 0;
    req.iMessageType = 0;
    req.iRequestId = 1;
    req.iTimeout = 5000;
    req.sServantName = opts.servant;
    req.sFuncName = "findObjectById4Any";
    req.sBuffer = new TarsStream.BinBuffer(Buffer.from(JSON.stringify({ id: opts.id }), "utf8"));
    var os = new TarsStream.TarsOutputStream();
    os.setHeaderLength(0);
    req._writeTo(os);
    os.setHeaderLength(os.getBinBuffer().length);
    var frame = os.getBinBuffer().toNodeBuffer();
    var got = Buffer.alloc(0);
    var sock = net.connect(opts.port, "127.0.0.1", function () { sock.write(frame); });
    sock.setTimeout(5000, function () { out({ ok: false, error: "timeout" }); });
    sock.on("error", function (e) { out({ ok: false, error: String(e.message) }); });
    sock.on("data", function (d) {
        got = Buffer.concat([got, d]);
        if (got.length < 4 || got.length < got.readUInt32BE(0)) return;
        var is = new TarsStream.TarsInputStream(new TarsStream.BinBuffer(got.slice(4, got.readUInt32BE(0))));
        var rsp = RequestF.ResponsePacket._readFrom(is);
        sock.destroy();
        if (rsp.iVersion !== 5) return out({ ok: false, error: "answered in version " + rsp.iVersion });
        if (rsp.iRet !== 0) return out({ ok: false, code: rsp.iRet, error: rsp.sResultDesc });
        var body = JSON.parse(rsp.sBuffer.toNodeBuffer().toString("utf8"));
        if (!Number.isInteger(body.tars_ret)) return out({ ok: false, error: "no tars_ret" });
        var r = {
            ok: true,
            ret: body.tars_ret,
            activeEp: body.activeEp.map(function (o, i) { return fromJson(o, "activeEp[" + i + "]"); }),
            inactiveEp: body.inactiveEp.map(function (o, i) { return fromJson(o, "inactiveEp[" + i + "]"); }),
        };
        if (opts.capture) r.request = frame.toString("hex");
        out(r);
    });
}

if (opts.version === 5) viaJson(); else viaRpc();
