"""``CascadeF`` (servant ``tars.tarsregistry.CascadeObj``): the cascade sync protocol.

See docs/protocol.md. The equivalent TARS IDL::

    module tarscascade {
        struct VersionF { 0 require string epoch; 1 require long revision; };
        struct CategoryStateF {
            0 require string category; 1 require VersionF version;
            2 optional long digest;              // the legacy 64-bit digest (0: not kept)
            3 optional long count = -1;          // records held (-1: not said)
            4 optional vector<byte> digest128;   // protocol 3: 16 bytes, big-endian
        };
        struct CategoryPlanF {
            0 require string category; 1 require int action; 2 require VersionF version;
        };
        struct FreshnessF {                      // how current the upstream itself is
            0 optional bool stale;               // cut off from its own source, or behind it
            1 optional long contactAgeMs;        // ms since it last heard from a fresh source
            2 optional bool fromDisk;            // serving a copy loaded from disk, unconfirmed
            3 optional string confirmedEpoch;    // the lineage its source confirmed
        };
        struct NodeAckF {
            0 require string nodeName; 1 require vector<CategoryStateF> held;
            2 optional string address;           // the node's own TARS address (registration)
            3 optional string proof;             // its latest proof for the relay (auth)
        };
        struct SubscribeReq {
            0 require string nodeName; 1 require string token;
            2 require vector<CategoryStateF> held; 3 optional string address;
            4 optional int protocol = 1; 5 optional int heartbeatMs;
            6 optional vector<byte> keyId;       // protocol 3: the id of its digest key
            7 optional vector<string> encodings; // snapshot payload encodings it reads
        };
        struct SubscribeRsp {
            0 require vector<CategoryPlanF> plan; 1 optional string upstream;
            2 optional FreshnessF freshness;
            3 optional int protocol;             // the upstream's (absent: 2 or older)
            4 optional vector<byte> digestKey;   // the tier's digest key (protocol 3)
        };
        struct HeartbeatReq {
            0 require string nodeName; 1 require vector<CategoryStateF> held;
            2 optional vector<NodeAckF> descendants; 3 optional map<string, string> info;
        };
        struct HeartbeatRsp {
            0 require vector<CategoryPlanF> plan; 1 optional FreshnessF freshness;
            2 optional vector<string> refused;   // descendants the upstream does not believe
        };
        struct AckReq {
            0 require string nodeName; 1 require vector<CategoryStateF> held;
            2 optional vector<NodeAckF> descendants;
            3 optional vector<CategoryStateF> floor;   // every descendant holds at least this
        };
        struct SnapshotChunkF {
            0 require string category; 1 require VersionF version; 2 require int seq;
            3 require int total; 4 require vector<byte> payload;
            5 optional long digest;              // legacy 64-bit (0: not kept)
            6 optional long count; 7 optional vector<byte> digest128;
            8 optional string encoding;          // of the payload ("": TARS records as is)
        };
        struct DeltaF {
            0 require string category; 1 require VersionF from; 2 require VersionF to;
            3 require vector<byte> payload;
        };
        struct ResyncF { 0 require string category; 1 optional string reason; };
        interface CascadeF {
            int subscribe(SubscribeReq req, out SubscribeRsp rsp);
            int heartbeat(HeartbeatReq req, out HeartbeatRsp rsp);
            void ack(AckReq req);
        };
    };

A node behind a relay sends a fresh proof in every heartbeat, ``info[PROOF_INFO_KEY]``.

Legacy digests are unsigned 64-bit values carried in a ``long``: ``to_wire_digest`` /
``from_wire_digest`` map them to and from the signed range. Protocol 3 digests are 16
bytes big-endian (``to_wire_digest128`` / ``from_wire_digest128``: empty is "not said",
any other length is malformed). Old peers skip the new tags (the codec skips unknown
tags), so a new message reads fine to them.
"""

from __future__ import annotations

from tarscascade.wire.codec import BOOL, BYTES, INT32_K, INT64_K, STRING, STRING_MAP, list_of
from tarscascade.wire.interface import Interface, Method, Param
from tarscascade.wire.struct import struct_kind, tars_struct, tfield

CASCADE_SERVANT = "tars.tarsregistry.CascadeObj"
#: 2 added BEHIND/HOLD plans, freshness, counts, descendant addresses and ack floors;
#: 3 added 128-bit keyed digests, the key id in subscribe and the key in its answer;
#: an upstream still serves protocol 1 and 2 downstreams (docs/protocol.md, "Versions").
PROTOCOL_VERSION = 3
OLDEST_PROTOCOL = 1
#: the first protocol with 128-bit keyed digests
DIGEST128_PROTOCOL = 3

#: SnapshotChunkF.encoding of a zlib-compressed payload, offered in SubscribeReq.encodings:
#: an upstream compresses chunks only for a downstream that offered it (older ones ignore
#: tag 7 and 8 and get plain chunks)
ZLIB_ENCODING = "zlib"

#: HeartbeatReq.info key: a leaf's latest proof for its relay (auth/proofs.py)
PROOF_INFO_KEY = "tarscascade.proof"

# push function names (status TARS_FUNC of a push)
PUSH_SNAPSHOT = "cascade.snapshot"
PUSH_DELTA = "cascade.delta"
PUSH_RESYNC = "cascade.resync"
#: no body: "acknowledge what you hold now" (someone began waiting for acks of changes
#: sent with a lazy DeltaF.ackWithinMs); older downstreams ignore it
PUSH_ACK_NOW = "cascade.acknow"
#: no body: "heartbeat now" (the upstream's freshness changed: stale, from disk, a
#: lineage confirmed; an idle downstream granted long heartbeats would hear of it late);
#: older downstreams ignore it
PUSH_BEAT_NOW = "cascade.beat"

# CategoryPlanF.action
UP_TO_DATE = 0
RESUME = 1
SNAPSHOT = 2
#: the upstream is older than what the downstream holds (same lineage): keep yours
BEHIND = 3
#: a new lineage that would replace most of what the downstream holds, not confirmed:
#: keep the old one (the mass-change guard)
HOLD = 4

# return codes of subscribe / heartbeat (method return values, not framework codes)
OK = 0
AUTH_FAILED = 1
BAD_REQUEST = 2
NOT_SUBSCRIBED = 3


def to_wire_digest(d: int) -> int:
    return d - (1 << 64) if d >= 1 << 63 else d


def from_wire_digest(d: int) -> int:
    return d + (1 << 64) if d < 0 else d


def to_wire_digest128(d: int) -> bytes:
    return d.to_bytes(16, "big")


def from_wire_digest128(b: bytes) -> int | None:
    """The digest, or None when not given; ValueError when not exactly 16 bytes."""
    if not b:
        return None
    if len(b) != 16:
        raise ValueError(f"a 128-bit digest of {len(b)} bytes")
    return int.from_bytes(b, "big")


@tars_struct
class VersionF:
    epoch: str = tfield(0, STRING, require=True, default="")
    revision: int = tfield(1, INT64_K, require=True, default=0)


VERSION_F = struct_kind(VersionF)


@tars_struct
class CategoryStateF:
    category: str = tfield(0, STRING, require=True, default="")
    version: VersionF = tfield(1, VERSION_F, require=True, default_factory=VersionF)
    digest: int = tfield(2, INT64_K, default=0)
    count: int = tfield(3, INT64_K, default=-1, skip_default=True)
    digest128: bytes = tfield(4, BYTES, default=b"", skip_default=True)


STATE_LIST = list_of(struct_kind(CategoryStateF))


@tars_struct
class CategoryPlanF:
    category: str = tfield(0, STRING, require=True, default="")
    action: int = tfield(1, INT32_K, require=True, default=UP_TO_DATE)
    version: VersionF = tfield(2, VERSION_F, require=True, default_factory=VersionF)


PLAN_LIST = list_of(struct_kind(CategoryPlanF))


@tars_struct
class FreshnessF:
    stale: bool = tfield(0, BOOL, default=False)
    contactAgeMs: int = tfield(1, INT64_K, default=0)
    fromDisk: bool = tfield(2, BOOL, default=False)
    confirmedEpoch: str = tfield(3, STRING, default="")


FRESHNESS_F = struct_kind(FreshnessF)


@tars_struct
class NodeAckF:
    nodeName: str = tfield(0, STRING, require=True, default="")
    held: list[CategoryStateF] = tfield(1, STATE_LIST, require=True, default_factory=list)
    address: str = tfield(2, STRING, default="", skip_default=True)
    proof: str = tfield(3, STRING, default="", skip_default=True)


ACK_LIST = list_of(struct_kind(NodeAckF))


@tars_struct
class SubscribeReq:
    nodeName: str = tfield(0, STRING, require=True, default="")
    token: str = tfield(1, STRING, require=True, default="")
    held: list[CategoryStateF] = tfield(2, STATE_LIST, require=True, default_factory=list)
    address: str = tfield(3, STRING, default="")
    protocol: int = tfield(4, INT32_K, default=OLDEST_PROTOCOL, skip_default=True)
    heartbeatMs: int = tfield(5, INT32_K, default=0, skip_default=True)
    keyId: bytes = tfield(6, BYTES, default=b"", skip_default=True)
    encodings: list[str] = tfield(7, list_of(STRING), default_factory=list, skip_default=True)
    #: the longest the node would stay silent when idle, ms, if the upstream allows it
    #: (``SubscribeRsp.idleHeartbeatMs``); older upstreams skip the tag
    idleHeartbeatMs: int = tfield(8, INT32_K, default=0, skip_default=True)


@tars_struct
class SubscribeRsp:
    plan: list[CategoryPlanF] = tfield(0, PLAN_LIST, require=True, default_factory=list)
    upstream: str = tfield(1, STRING, default="")
    freshness: FreshnessF = tfield(2, FRESHNESS_F, default_factory=FreshnessF)
    protocol: int = tfield(3, INT32_K, default=0, skip_default=True)
    digestKey: bytes = tfield(4, BYTES, default=b"", skip_default=True)
    #: how long the downstream may stay silent when idle, ms: the upstream keeps an idle
    #: connected node alive on its own (docs/protocol.md, *Idle heartbeats*). 0 (absent:
    #: an older upstream, or none granted) = the downstream's own idle interval
    idleHeartbeatMs: int = tfield(5, INT32_K, default=0, skip_default=True)


@tars_struct
class HeartbeatReq:
    nodeName: str = tfield(0, STRING, require=True, default="")
    held: list[CategoryStateF] = tfield(1, STATE_LIST, require=True, default_factory=list)
    descendants: list[NodeAckF] = tfield(2, ACK_LIST, default_factory=list)
    info: dict[str, str] = tfield(3, STRING_MAP, default_factory=dict)


@tars_struct
class HeartbeatRsp:
    plan: list[CategoryPlanF] = tfield(0, PLAN_LIST, require=True, default_factory=list)
    freshness: FreshnessF = tfield(1, FRESHNESS_F, default_factory=FreshnessF)
    refused: list[str] = tfield(2, list_of(STRING), default_factory=list, skip_default=True)


@tars_struct
class AckReq:
    nodeName: str = tfield(0, STRING, require=True, default="")
    held: list[CategoryStateF] = tfield(1, STATE_LIST, require=True, default_factory=list)
    descendants: list[NodeAckF] = tfield(2, ACK_LIST, default_factory=list)
    floor: list[CategoryStateF] = tfield(3, STATE_LIST, default_factory=list)


@tars_struct
class SnapshotChunkF:
    category: str = tfield(0, STRING, require=True, default="")
    version: VersionF = tfield(1, VERSION_F, require=True, default_factory=VersionF)
    seq: int = tfield(2, INT32_K, require=True, default=0)
    total: int = tfield(3, INT32_K, require=True, default=1)
    payload: bytes = tfield(4, BYTES, require=True, default=b"")
    digest: int = tfield(5, INT64_K, default=0)
    count: int = tfield(6, INT64_K, default=0)
    digest128: bytes = tfield(7, BYTES, default=b"", skip_default=True)
    encoding: str = tfield(8, STRING, default="", skip_default=True)


@tars_struct
class DeltaF:
    category: str = tfield(0, STRING, require=True, default="")
    from_: VersionF = tfield(1, VERSION_F, require=True, default_factory=VersionF)
    to: VersionF = tfield(2, VERSION_F, require=True, default_factory=VersionF)
    payload: bytes = tfield(3, BYTES, require=True, default=b"")
    #: how soon the upstream wants this delta acknowledged, ms; 0 (absent: an older
    #: upstream) = at once. Older downstreams skip the tag and acknowledge at once.
    ackWithinMs: int = tfield(4, INT32_K, default=0, skip_default=True)


@tars_struct
class ResyncF:
    category: str = tfield(0, STRING, require=True, default="")
    reason: str = tfield(1, STRING, default="")


SUBSCRIBE = Method(
    "subscribe",
    (Param("req", struct_kind(SubscribeReq)), Param("rsp", struct_kind(SubscribeRsp), out=True)),
    INT32_K,
)
HEARTBEAT = Method(
    "heartbeat",
    (Param("req", struct_kind(HeartbeatReq)), Param("rsp", struct_kind(HeartbeatRsp), out=True)),
    INT32_K,
)
ACK = Method("ack", (Param("req", struct_kind(AckReq)),), None)

CASCADE_F = Interface.of("CascadeF", SUBSCRIBE, HEARTBEAT, ACK)
