"""The cascade sync layer (docs/protocol.md): upstream hub, downstream client, payloads.

Layer ``cascade``: imports ``catalog``, ``transport``, ``wire`` (and ``model``,
``errors``). The registry runs a :class:`CascadeHub` over its catalog; a node agent
runs a :class:`CascadeClient` into its replica and, as a relay, a hub over that replica.
"""

from tarscascade.cascade.downstream import CascadeClient, ClientOptions, ClientStats
from tarscascade.cascade.freshness import FRESH, Freshness
from tarscascade.cascade.hub import CascadeHub, NodeInfo
from tarscascade.cascade.payload import (
    PayloadError,
    decode_events,
    decode_records,
    encode_events,
    encode_records,
)
from tarscascade.cascade.replica import AppliedHook
from tarscascade.cascade.tracker import NodeState, NodeView, heard_at, is_silent
from tarscascade.cascade.upstream import HubOptions, HubStats

__all__ = [
    "FRESH",
    "AppliedHook",
    "CascadeClient",
    "CascadeHub",
    "ClientOptions",
    "ClientStats",
    "Freshness",
    "HubOptions",
    "HubStats",
    "NodeInfo",
    "NodeState",
    "NodeView",
    "PayloadError",
    "decode_events",
    "decode_records",
    "encode_events",
    "encode_records",
    "heard_at",
    "is_silent",
]
