"""Compressed snapshot chunks: bounded inflation, the same catalog as plain chunks, and an
encoding a node never offered is refused without touching what it holds."""

from __future__ import annotations

import zlib

import pytest

from tarscascade.cascade.frames import snapshot_frame
from tarscascade.cascade.payload import (
    PayloadError,
    compress_payload,
    decompress_payload,
    encode_records,
)
from tarscascade.cascade.replica import Outcome, Replica
from tarscascade.cascade.snapshots import SnapshotCache, encode_snapshot
from tarscascade.catalog import Catalog
from tarscascade.model import Category, EndpointRecord, Version
from tarscascade.wire.framing import DEFAULT_MAX_FRAME
from tarscascade.wire.idl.cascadef import ZLIB_ENCODING, SnapshotChunkF
from tarscascade.wire.rpc import ClientRpc, Push
from tarscascade.wire.struct import decode_struct

V = Version("e", 9)


def records(n: int) -> list[EndpointRecord]:
    return [
        EndpointRecord(f"App{i % 7}.S{i}.Obj", f"10.0.{i // 250}.{i % 250}", 1000 + i % 50)
        for i in range(n)
    ]


def catalog_of(recs: list[EndpointRecord]) -> Catalog:
    cat = Catalog()
    cat.replace_category(Category.OBJECTS, recs, V)
    return cat


def test_a_payload_round_trips_and_shrinks() -> None:
    payload = encode_records(records(2000))
    packed = compress_payload(payload)
    assert len(packed) * 4 < len(payload)
    assert decompress_payload(packed, len(payload)) == payload


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (zlib.compress(b"\0" * 4096), "inflates past 4000"),  # a bomb, however small
        (b"not zlib at all", "bad zlib payload"),
        (zlib.compress(b"[1,2,3]" * 50)[:-6], "truncated"),
        (zlib.compress(b"[1,2,3]") + b"junk", "junk after"),
    ],
)
def test_a_bad_compressed_payload_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decompress_payload(data, 4000)


async def take(cache: SnapshotCache, compressed: bool) -> tuple[Catalog, list[str], int]:
    """Everything a session sends (compressed or not), applied to a fresh replica: the
    replica, the chunks' encodings and the bytes on the wire."""
    snap = cache.get(Category.OBJECTS)
    replica, rpc, out = Replica(Catalog()), ClientRpc(), None
    encodings, sent = [], 0
    for seq in range(snap.total):
        frame = await snap.frame(seq, compressed)
        sent += len(frame)
        (push,) = rpc.receive_data(frame)
        assert isinstance(push, Push)
        encodings.append(decode_struct(SnapshotChunkF, push.packet.sBuffer).encoding)
        out = replica.handle(push.func, push.packet.sBuffer)
    assert out is not None
    assert out.outcome is Outcome.APPLIED
    return replica.catalog, encodings, sent


async def test_compressed_chunks_give_the_same_replica_as_plain_ones_in_fewer_bytes() -> None:
    source = catalog_of(records(3000))
    cache = SnapshotCache(source, chunk_bytes=16 * 1024)
    plain, plain_enc, plain_bytes = await take(cache, compressed=False)
    packed, packed_enc, packed_bytes = await take(cache, compressed=True)
    assert cache.builds == 1  # one build serves both kinds of downstream
    assert set(plain_enc) == {""}
    assert set(packed_enc) == {ZLIB_ENCODING}
    assert len(packed_enc) > 5
    assert packed_bytes * 4 < plain_bytes
    for replica in (plain, packed):
        assert replica.digest(Category.OBJECTS) == source.digest(Category.OBJECTS)
        assert replica.version(Category.OBJECTS) == V
    await cache.aclose()


async def test_a_cache_that_does_not_compress_sends_plain_chunks_to_everybody() -> None:
    source = catalog_of(records(500))
    cache = SnapshotCache(source, chunk_bytes=8 * 1024, compress=False)
    replica, encodings, _ = await take(cache, compressed=True)
    assert set(encodings) == {""}
    assert replica.digest(Category.OBJECTS) == source.digest(Category.OBJECTS)
    await cache.aclose()


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("zstd", compress_payload(encode_records(records(3)))),  # never offered
        (ZLIB_ENCODING, zlib.compress(b"\0" * (11 << 20))),  # inflates past a frame
        (ZLIB_ENCODING, encode_records(records(3))),  # says zlib, is not
    ],
)
def test_a_chunk_the_node_cannot_read_asks_a_resync_and_changes_nothing(
    encoding: str, payload: bytes
) -> None:
    held = catalog_of(records(5))
    digest = held.digest(Category.OBJECTS)
    frame = snapshot_frame(
        Category.OBJECTS, Version("e", 20), None, 3, 0, 1, payload, encoding=encoding
    )
    (push,) = ClientRpc().receive_data(frame)
    assert isinstance(push, Push)
    out = Replica(held).handle(push.func, push.packet.sBuffer)
    assert out.outcome is Outcome.RESYNC
    assert "bad snapshot payload" in out.reason
    assert held.digest(Category.OBJECTS) == digest
    assert held.version(Category.OBJECTS) == V


async def test_the_inflation_bound_is_the_node_s_own_frame_limit() -> None:
    """A node whose connection takes larger frames takes compressed chunks as large; one
    with the default limit refuses them (a plain chunk that size would not reach it)."""
    big = 64 << 20
    source = catalog_of(records(120_000))
    recs = list(source.records(Category.OBJECTS))
    snap = encode_snapshot(
        Category.OBJECTS,
        V,
        source.digest(Category.OBJECTS),
        recs,
        chunk_bytes=big,
        max_frame=big,
        compress=True,
    )
    assert snap.total == 1
    (push,) = ClientRpc(big).receive_data(snap.zframes[0])
    assert isinstance(push, Push)
    (plain,) = ClientRpc(big).receive_data(snap.frames[0])
    assert isinstance(plain, Push)
    assert len(decode_struct(SnapshotChunkF, plain.packet.sBuffer).payload) > DEFAULT_MAX_FRAME
    assert Replica(Catalog()).handle(push.func, push.packet.sBuffer).outcome is Outcome.RESYNC
    roomy = Replica(Catalog(), max_frame=big)
    assert roomy.handle(push.func, push.packet.sBuffer).outcome is Outcome.APPLIED
    assert roomy.catalog.digest(Category.OBJECTS) == source.digest(Category.OBJECTS)
