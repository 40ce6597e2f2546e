#!/usr/bin/env node
/*
 * Interop codec tool: encodes and decodes TARS values with the real @tars/stream
 * (TarsOutputStream / TarsInputStream), driven by JSON lines on stdin.
 *
 * One request per line, one answer line per request, in order:
 *
 *   {"op":"encode","fields":[{"tag":T,"type":"int32","value":...}, ...]}  -> {"hex":"..."}
 *   {"op":"decode","hex":"...","fields":[{"tag":T,"type":"int32"}, ...]}  -> {"values":[...]}
 *   {"op":"ping"}                                                          -> {"ok":true}
 *   anything that fails                                                    -> {"error":"..."}
 *
 * Types: int8 int16 int32 int64 uint8 uint16 uint32 bool float double string bytes
 *        list<T> map<K,V> EndpointF RegistryEndpointF.
 *   - "bytes" is vector<byte> (BinBuffer, SIMPLE_LIST on the wire); "list<int8>" is a
 *     plain LIST of chars.
 *   - EndpointF is the current tars EndpointF (tags 0-14), written the way tars2node
 *     generates struct code (every field written, required ones read as required).
 *     RegistryEndpointF is the older definition bundled in @tars/registry (tags 0-12).
 *
 * JSON conventions (both directions):
 *   - int64/uint32 values travel as decimal strings (numbers are accepted on input);
 *     they are written/read with @tars/stream's bString mode, so all 64 bits survive.
 *   - bytes travel as lowercase hex strings.
 *   - float/double: non-finite values and -0 travel as the strings "NaN",
 *     "Infinity", "-Infinity", "-0".
 *   - maps travel as arrays of [key, value] pairs (an object is accepted on input).
 *     Decoded maps come out in the order @tars/stream iterates them (JS object key
 *     order: integer-like keys ascending first, then insertion order), not wire order.
 *   - structs travel as objects keyed by field name.
 *
 * Fields are read in ascending tag order (as generated code does; TarsInputStream
 * only scans forward) and reported in request order.
 *
 * The process never exits on a bad request; it exits when stdin closes.
 */
"use strict";

var readline = require("readline");
var Tars = require("@tars/stream");
var RegistryEndpointF = require("@tars/registry/EndpointFTars.js").tars.EndpointF;

// ---------------------------------------------------------------- EndpointF (tags 0-14)
// Mirrors tars2node output for TarsProtocol servant/EndpointF.tars.
var EndpointF = function () {
    this.host = "";
    this.port = 0;
    this.timeout = 0;
    this.istcp = 0;
    this.grid = 0;
    this.groupworkid = 0;
    this.grouprealid = 0;
    this.setId = "";
    this.qos = 0;
    this.bakFlag = 0;
    this.weight = 0;
    this.weightType = 0;
    this.authType = 0;
    this.nodeName = "";
    this._classname = "tars.EndpointF";
};
EndpointF._classname = "tars.EndpointF";
EndpointF._write = function (os, tag, value) { os.writeStruct(tag, value); };
EndpointF._read = function (is, tag, def) { return is.readStruct(tag, true, def); };
EndpointF._readFrom = function (is) {
    var tmp = new EndpointF();
    tmp.host = is.readString(0, true, "");
    tmp.port = is.readInt32(1, true, 0);
    tmp.timeout = is.readInt32(2, true, 0);
    tmp.istcp = is.readInt32(3, true, 0);
    tmp.grid = is.readInt32(4, true, 0);
    tmp.groupworkid = is.readInt32(5, false, 0);
    tmp.grouprealid = is.readInt32(6, false, 0);
    tmp.setId = is.readString(7, false, "");
    tmp.qos = is.readInt32(8, false, 0);
    tmp.bakFlag = is.readInt32(9, false, 0);
    tmp.weight = is.readInt32(11, false, 0);
    tmp.weightType = is.readInt32(12, false, 0);
    tmp.authType = is.readInt32(13, false, 0);
    tmp.nodeName = is.readString(14, false, "");
    return tmp;
};
EndpointF.prototype._writeTo = function (os) {
    os.writeString(0, this.host);
    os.writeInt32(1, this.port);
    os.writeInt32(2, this.timeout);
    os.writeInt32(3, this.istcp);
    os.writeInt32(4, this.grid);
    os.writeInt32(5, this.groupworkid);
    os.writeInt32(6, this.grouprealid);
    os.writeString(7, this.setId);
    os.writeInt32(8, this.qos);
    os.writeInt32(9, this.bakFlag);
    os.writeInt32(11, this.weight);
    os.writeInt32(12, this.weightType);
    os.writeInt32(13, this.authType);
    os.writeString(14, this.nodeName);
};
EndpointF.new = function () { return new EndpointF(); };
EndpointF.create = function (is) { return EndpointF._readFrom(is); };

var STRUCTS = {
    EndpointF: {
        cls: EndpointF,
        fields: ["host", "port", "timeout", "istcp", "grid", "groupworkid", "grouprealid",
            "setId", "qos", "bakFlag", "weight", "weightType", "authType", "nodeName"],
    },
    RegistryEndpointF: {
        cls: RegistryEndpointF,
        fields: ["host", "port", "timeout", "istcp", "grid", "groupworkid", "grouprealid",
            "setId", "qos", "bakFlag", "weight", "weightType"],
    },
};

// ---------------------------------------------------------------- type descriptors

// A descriptor: {name, proto, big, toJs(json), toJson(js)}. `proto` is what @tars/stream
// takes as a list element / map key / map value type; `big` says the value is an int64
// carried as a string (passed as bString/bValue/bKey to @tars/stream).

function splitTopLevel(s) {
    var parts = [], depth = 0, start = 0;
    for (var i = 0; i < s.length; i++) {
        var c = s[i];
        if (c === "<") depth++;
        else if (c === ">") depth--;
        else if (c === "," && depth === 0) {
            parts.push(s.slice(start, i).trim());
            start = i + 1;
        }
    }
    parts.push(s.slice(start).trim());
    return parts;
}

function hexToBuffer(hex) {
    if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
        throw new Error("expected an even-length hex string, got " + JSON.stringify(hex));
    }
    return Buffer.from(hex, "hex");
}

function checkInt(v, lo, hi, name) {
    if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
        throw new Error(name + " value out of range or not an integer: " + JSON.stringify(v));
    }
    return v;
}

function floatToJson(v) {
    if (Number.isNaN(v)) return "NaN";
    if (v === Infinity) return "Infinity";
    if (v === -Infinity) return "-Infinity";
    if (v === 0 && 1 / v < 0) return "-0";
    return v;
}

function floatFromJson(v) {
    if (typeof v === "number") return v;
    if (v === "NaN") return NaN;
    if (v === "Infinity") return Infinity;
    if (v === "-Infinity") return -Infinity;
    if (v === "-0") return -0;
    throw new Error("not a float: " + JSON.stringify(v));
}

function intDesc(name, proto, lo, hi) {
    return {
        name: name, proto: proto, big: false,
        toJs: function (v) { return checkInt(v, lo, hi, name); },
        toJson: function (v) { return v; },
    };
}

function bigDesc(name, proto) {
    return {
        name: name, proto: proto, big: true,
        toJs: function (v) {
            var s = String(v);
            if (!/^-?[0-9]+$/.test(s)) throw new Error(name + " value is not an integer: " + s);
            return s;
        },
        // @tars/stream returns a Number when the wire value fitted in int32 and a
        // string otherwise (bString mode): normalise to a decimal string.
        toJson: function (v) { return String(v); },
    };
}

var SIMPLE = {
    int8: intDesc("int8", Tars.Int8, -128, 127),
    int16: intDesc("int16", Tars.Int16, -32768, 32767),
    int32: intDesc("int32", Tars.Int32, -2147483648, 2147483647),
    uint8: intDesc("uint8", Tars.UInt8, 0, 255),
    uint16: intDesc("uint16", Tars.UInt16, 0, 65535),
    int64: bigDesc("int64", Tars.Int64),
    uint32: bigDesc("uint32", Tars.UInt32),
    bool: {
        name: "bool", proto: Tars.Boolean, big: false,
        toJs: function (v) {
            if (typeof v !== "boolean") throw new Error("bool value must be true/false");
            return v;
        },
        toJson: function (v) { return v; },
    },
    float: {
        name: "float", proto: Tars.Float, big: false,
        toJs: floatFromJson, toJson: floatToJson,
    },
    double: {
        name: "double", proto: Tars.Double, big: false,
        toJs: floatFromJson, toJson: floatToJson,
    },
    string: {
        name: "string", proto: Tars.String, big: false,
        toJs: function (v) {
            if (typeof v !== "string") throw new Error("string value must be a JSON string");
            return v;
        },
        toJson: function (v) { return v; },
    },
    bytes: {
        name: "bytes", proto: Tars.BinBuffer, big: false,
        toJs: function (v) { return new Tars.BinBuffer(hexToBuffer(v)); },
        toJson: function (v) { return v.length ? v.toNodeBuffer().toString("hex") : ""; },
    },
};

function structDesc(name) {
    var info = STRUCTS[name];
    return {
        name: name, proto: info.cls, big: false,
        toJs: function (v) {
            if (v === null || typeof v !== "object" || Array.isArray(v)) {
                throw new Error(name + " value must be an object");
            }
            var obj = new info.cls();
            Object.keys(v).forEach(function (k) {
                if (info.fields.indexOf(k) < 0) throw new Error(name + " has no field " + k);
                obj[k] = v[k];
            });
            return obj;
        },
        toJson: function (v) {
            var out = {};
            info.fields.forEach(function (k) { out[k] = v[k]; });
            return out;
        },
    };
}

function parseType(t) {
    if (typeof t !== "string") throw new Error("type must be a string");
    t = t.trim();
    if (SIMPLE.hasOwnProperty(t)) return SIMPLE[t];
    if (STRUCTS.hasOwnProperty(t)) return structDesc(t);
    var m = /^(list|vector)<(.*)>$/.exec(t);
    if (m) {
        var elem = parseType(m[2]);
        return {
            name: "list<" + elem.name + ">",
            proto: Tars.List(elem.proto, elem.big ? 1 : 0),
            big: false,
            toJs: function (v) {
                if (!Array.isArray(v)) throw new Error("list value must be an array");
                var list = Tars.List(elem.proto, elem.big ? 1 : 0);
                v.forEach(function (x) { list.push(elem.toJs(x)); });
                return list;
            },
            toJson: function (v) { return v.value.map(elem.toJson); },
        };
    }
    m = /^map<(.*)>$/.exec(t);
    if (m) {
        var kv = splitTopLevel(m[1]);
        if (kv.length !== 2) throw new Error("bad map type: " + t);
        var key = parseType(kv[0]), val = parseType(kv[1]);
        var mk = function () { return Tars.Map(key.proto, val.proto, key.big ? 1 : 0, val.big ? 1 : 0); };
        return {
            name: "map<" + key.name + "," + val.name + ">",
            proto: mk(),
            big: false,
            toJs: function (v) {
                var pairs;
                if (Array.isArray(v)) pairs = v;
                else if (v !== null && typeof v === "object") {
                    pairs = Object.keys(v).map(function (k) { return [k, v[k]]; });
                } else throw new Error("map value must be an array of pairs or an object");
                var map = mk();
                pairs.forEach(function (p) {
                    if (!Array.isArray(p) || p.length !== 2) throw new Error("map entries must be [key, value] pairs");
                    map.insert(key.toJs(p[0]), val.toJs(p[1]));
                });
                return map;
            },
            toJson: function (v) {
                var out = [];
                // HeroMap.forEach hands numeric keys back as Numbers (strings for int64
                // keys in bKey mode); toJson normalises them.
                v.forEach(function (k, x) { out.push([key.toJson(k), val.toJson(x)]); }, key.big ? 1 : 0);
                return out;
            },
        };
    }
    throw new Error("unknown type: " + t);
}

// ---------------------------------------------------------------- ops

function checkTag(tag) {
    if (typeof tag !== "number" || !Number.isInteger(tag) || tag < 0 || tag > 255) {
        throw new Error("tag must be an integer 0..255, got " + JSON.stringify(tag));
    }
    return tag;
}

function encode(req) {
    if (!Array.isArray(req.fields)) throw new Error("encode needs fields: [...]");
    var os = new Tars.TarsOutputStream();
    req.fields.forEach(function (f) {
        var tag = checkTag(f.tag);
        var d = parseType(f.type);
        if (!("value" in f)) throw new Error("field at tag " + tag + " has no value");
        d.proto._write(os, tag, d.toJs(f.value), d.big ? 1 : 0);
    });
    var bin = os.getBinBuffer();
    return { hex: bin.length ? bin.toNodeBuffer().toString("hex") : "" };
}

function decode(req) {
    if (!Array.isArray(req.fields)) throw new Error("decode needs fields: [...]");
    var buf = hexToBuffer(req.hex);
    var is = new Tars.TarsInputStream(new Tars.BinBuffer(buf));
    var order = req.fields.map(function (f, i) { return i; });
    order.sort(function (a, b) { return req.fields[a].tag - req.fields[b].tag; });
    var values = new Array(req.fields.length);
    order.forEach(function (i) {
        var f = req.fields[i];
        var tag = checkTag(f.tag);
        var d = parseType(f.type);
        // proto._read(is, tag, def, flag) is is.read<Type>(tag, require=true, ...)
        values[i] = d.toJson(d.proto._read(is, tag, d.proto, d.big ? 1 : 0));
    });
    var out = { values: values };
    if (is._binBuffer._position > buf.length) {
        // @tars/stream reads past the end of short input without noticing (Buffer reads
        // return garbage/throw inconsistently); report it so tests do not trust it.
        throw new Error("read past the end of the input");
    }
    return out;
}

function handle(line) {
    var req = JSON.parse(line);
    if (req === null || typeof req !== "object") throw new Error("request must be a JSON object");
    switch (req.op) {
        case "encode": return encode(req);
        case "decode": return decode(req);
        case "ping": return { ok: true };
        default: throw new Error("unknown op: " + JSON.stringify(req.op));
    }
}

function errorText(e) {
    if (e === null || e === undefined) return String(e);
    var name = e.constructor && e.constructor.name ? e.constructor.name : "Error";
    return name + ": " + (e.message !== undefined ? e.message : String(e));
}

var rl = readline.createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
rl.on("line", function (line) {
    if (!line.trim()) return;
    var answer;
    try {
        answer = handle(line);
    } catch (e) {
        answer = { error: errorText(e) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
});
rl.on("close", function () { process.exit(0); });
process.on("SIGTERM", function () { process.exit(0); });
process.on("uncaughtException", function (e) {
    // Should not happen (every request is wrapped), but never die mid-session.
    process.stderr.write("codec_tool uncaught: " + errorText(e) + "\n");
});
