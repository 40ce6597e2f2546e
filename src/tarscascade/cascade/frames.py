"""Push frames of the cascade protocol, encoded once and written to many connections.

A push is a TARS ResponsePacket with request id 0 whose ``sBuffer`` is the encoding of
one CascadeF struct (``SnapshotChunkF``, ``DeltaF`` or ``ResyncF``). Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tarscascade.cascade.payload import encode_events, split_records
from tarscascade.errors import FrameError
from tarscascade.model import Category, ChangeEvent, Record, Version
from tarscascade.wire.framing import DEFAULT_MAX_FRAME
from tarscascade.wire.idl.cascadef import (
    PUSH_ACK_NOW,
    PUSH_BEAT_NOW,
    PUSH_DELTA,
    PUSH_RESYNC,
    PUSH_SNAPSHOT,
    DeltaF,
    ResyncF,
    SnapshotChunkF,
    VersionF,
    to_wire_digest,
    to_wire_digest128,
)
from tarscascade.wire.rpc import encode_push
from tarscascade.wire.struct import encode_struct

#: Snapshot payloads are cut at about this size (docs/protocol.md: ~1 MiB chunks).
DEFAULT_CHUNK_BYTES = 1 << 20
#: ResyncF.category when the upstream gives up on the whole session (it then closes).
ALL_CATEGORIES = "*"
#: Events per delta frame: a large batch is sent as several consecutive deltas.
DEFAULT_DELTA_EVENTS = 5_000


def version_f(v: Version) -> VersionF:
    return VersionF(epoch=v.epoch, revision=v.revision)


def snapshot_payloads(
    records: Sequence[Record], chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[bytes]:
    """The chunk payloads of a snapshot, one at a time (callers may yield in between)."""
    for payload, _ in split_records(records, chunk_bytes):
        yield payload


def snapshot_frame(
    category: Category,
    version: Version,
    legacy: int | None,
    count: int,
    seq: int,
    total: int,
    payload: bytes,
    max_frame: int = DEFAULT_MAX_FRAME,
    *,
    digest128: int | None = None,
    encoding: str = "",
) -> bytes:
    """One chunk; ``legacy``: the 64-bit digest (None: not kept, sent as 0),
    ``digest128``: the v2 digest (None: not sent); ``encoding``: of ``payload``
    ("": plain, ``ZLIB_ENCODING``: compressed)."""
    chunk = SnapshotChunkF(
        category=str(category),
        version=version_f(version),
        seq=seq,
        total=total,
        payload=payload,
        digest=to_wire_digest(legacy or 0),
        count=count,
        digest128=b"" if digest128 is None else to_wire_digest128(digest128),
        encoding=encoding,
    )
    return encode_push(PUSH_SNAPSHOT, encode_struct(chunk), max_frame)


def delta_frames(
    category: Category,
    from_: Version,
    to: Version,
    events: Sequence[ChangeEvent],
    max_events: int = DEFAULT_DELTA_EVENTS,
    max_frame: int = DEFAULT_MAX_FRAME,
    ack_within_ms: int = 0,
) -> list[bytes]:
    """Frames taking a category from ``from_`` to ``to``: one per ``max_events`` events.

    Each intermediate delta ends at its last event's revision, which is the version a
    downstream holds after applying it; an empty list of events is a *bookmark* (the
    content did not change, the version moves). ``ack_within_ms``: how soon the
    downstream should acknowledge (0: at once).
    """
    if not events:
        return [_delta_frame(category, from_, to, [], max_frame, ack_within_ms)]
    frames: list[bytes] = []
    _split_deltas(frames, category, from_, to, events, max_events, max_frame, ack_within_ms)
    return frames


def _split_deltas(
    out: list[bytes],
    category: Category,
    from_: Version,
    to: Version,
    events: Sequence[ChangeEvent],
    max_events: int,
    max_frame: int,
    ack_within_ms: int,
) -> None:
    start = from_
    for i in range(0, len(events), max_events):
        part = events[i : i + max_events]
        end = to if i + max_events >= len(events) else Version(to.epoch, part[-1].revision)
        try:
            out.append(_delta_frame(category, start, end, part, max_frame, ack_within_ms))
        except FrameError:
            if len(part) == 1:
                raise
            # unusually long records: cut this part finer rather than fail the push
            _split_deltas(out, category, start, end, part, len(part) // 2, max_frame, ack_within_ms)
        start = end


def _delta_frame(
    category: Category,
    from_: Version,
    to: Version,
    events: Sequence[ChangeEvent],
    max_frame: int,
    ack_within_ms: int = 0,
) -> bytes:
    delta = DeltaF(
        category=str(category),
        from_=version_f(from_),
        to=version_f(to),
        payload=encode_events(events),
        ackWithinMs=ack_within_ms,
    )
    return encode_push(PUSH_DELTA, encode_struct(delta), max_frame)


#: the push asking a downstream to acknowledge what it holds now
ACK_NOW_FRAME = encode_push(PUSH_ACK_NOW, b"")
#: the push asking a downstream to heartbeat now (it hears this upstream's freshness)
BEAT_NOW_FRAME = encode_push(PUSH_BEAT_NOW, b"")


def resync_frame(category: str, reason: str, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    body = encode_struct(ResyncF(category=str(category), reason=reason))
    return encode_push(PUSH_RESYNC, body, max_frame)
