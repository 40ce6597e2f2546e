"""Replica: pushes applied to a catalog, checked; anything that does not fit asks a resync."""

from __future__ import annotations

import dataclasses
from typing import Any

from tarscascade.cascade.frames import delta_frames
from tarscascade.cascade.replica import Outcome, Replica
from tarscascade.cascade.snapshots import encode_snapshot
from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, EndpointRecord, Op, Setting, Version
from tarscascade.wire.idl.cascadef import (
    PUSH_RESYNC,
    PUSH_SNAPSHOT,
    ResyncF,
    SnapshotChunkF,
    VersionF,
)
from tarscascade.wire.rpc import ClientRpc, Push
from tarscascade.wire.struct import decode_struct, encode_struct

E = "epoch1"


def eps(n: int, obj: str = "A.S.Obj") -> list[EndpointRecord]:
    return [EndpointRecord(obj, "10.0.0.1", 1000 + i) for i in range(n)]


def unframe(frame: bytes) -> tuple[str, bytes]:
    (push,) = ClientRpc().receive_data(frame)
    assert isinstance(push, Push)
    return push.func, push.packet.sBuffer


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


def snapshot_of(records: list[EndpointRecord], rev: int, chunk: int = 512) -> list[bytes]:
    cat = Catalog()
    cat.replace_category(Category.OBJECTS, records, Version(E, rev))
    snap = encode_snapshot(
        Category.OBJECTS, Version(E, rev), cat.digest(Category.OBJECTS), records, chunk
    )
    return list(snap.frames)


def test_a_chunked_snapshot_replaces_atomically_on_its_last_chunk() -> None:
    catalog, hook = Catalog(), Recorder()
    replica = Replica(catalog, hook)
    frames = snapshot_of(eps(40), 7)
    assert len(frames) > 3
    for frame in frames[:-1]:
        assert replica.handle(*unframe(frame)).outcome is Outcome.PENDING
        assert catalog.counts()["endpoints"] == 0  # never half a snapshot
    result = replica.handle(*unframe(frames[-1]))
    assert (result.outcome, result.snapshot) == (Outcome.APPLIED, True)
    assert catalog.counts()["endpoints"] == 40
    assert catalog.version(Category.OBJECTS) == Version(E, 7)
    assert hook.calls == [(Category.OBJECTS, None, Version(E, 7), None)]


def test_a_snapshot_whose_digest_or_count_differ_is_refused() -> None:
    catalog = Catalog()
    frames = snapshot_of(eps(3), 7, chunk=10**6)
    _, body = unframe(frames[0])
    chunk = decode_struct(SnapshotChunkF, body)
    other = (int.from_bytes(chunk.digest128, "big") + 1).to_bytes(16, "big")
    for bad in (
        dataclasses.replace(chunk, digest128=other),
        dataclasses.replace(chunk, digest128=chunk.digest128[:15]),  # malformed
        dataclasses.replace(chunk, digest128=chunk.digest128 + b"\x00"),
        dataclasses.replace(chunk, count=4),
    ):
        result = Replica(catalog).handle(PUSH_SNAPSHOT, encode_struct(bad))
        assert result.outcome is Outcome.RESYNC
    assert catalog.counts()["endpoints"] == 0


def test_chunks_out_of_order_or_of_another_version_ask_a_resync() -> None:
    replica = Replica(Catalog())
    a, b = snapshot_of(eps(40), 7), snapshot_of(eps(40), 8)
    assert replica.handle(*unframe(a[0])).outcome is Outcome.PENDING
    assert replica.handle(*unframe(a[2])).outcome is Outcome.RESYNC  # skipped chunk 1
    assert replica.handle(*unframe(a[1])).outcome is Outcome.IGNORED  # nothing in progress
    assert replica.handle(*unframe(a[0])).outcome is Outcome.PENDING
    assert replica.handle(*unframe(b[1])).outcome is Outcome.RESYNC  # another version


def test_deltas_apply_only_on_top_of_their_starting_version() -> None:
    catalog, hook = Catalog(), Recorder()
    catalog.replace_category(Category.SETTINGS, [Setting("a", "1")], Version(E, 5))
    replica = Replica(catalog, hook)
    put = ChangeEvent(6, Category.SETTINGS, Op.PUT, "a", Setting("a", "2"))
    (frame,) = delta_frames(Category.SETTINGS, Version(E, 5), Version(E, 6), [put])
    assert replica.handle(*unframe(frame)).outcome is Outcome.APPLIED
    assert catalog.get_setting("a") == "2"
    assert replica.handle(*unframe(frame)).outcome is Outcome.IGNORED  # a duplicate
    (gap,) = delta_frames(
        Category.SETTINGS,
        Version(E, 9),
        Version(E, 10),
        [ChangeEvent(10, Category.SETTINGS, Op.DELETE, "a", None)],
    )
    assert replica.handle(*unframe(gap)).outcome is Outcome.RESYNC
    (other,) = delta_frames(Category.SETTINGS, Version("x", 6), Version("x", 7), [])
    assert replica.handle(*unframe(other)).outcome is Outcome.RESYNC
    (bookmark,) = delta_frames(Category.SETTINGS, Version(E, 6), Version(E, 30), [])
    assert replica.handle(*unframe(bookmark)).outcome is Outcome.APPLIED
    assert catalog.version(Category.SETTINGS) == Version(E, 30)
    assert catalog.get_setting("a") == "2"
    assert hook.calls[-1] == (Category.SETTINGS, Version(E, 6), Version(E, 30), [])


def test_a_delta_whose_revisions_fall_outside_its_versions_is_refused() -> None:
    catalog = Catalog()
    catalog.replace_category(Category.SETTINGS, [], Version(E, 5))
    late = ChangeEvent(10, Category.SETTINGS, Op.PUT, "a", Setting("a", "2"))
    (frame,) = delta_frames(Category.SETTINGS, Version(E, 5), Version(E, 9), [late])
    assert Replica(catalog).handle(*unframe(frame)).outcome is Outcome.RESYNC
    early = ChangeEvent(5, Category.SETTINGS, Op.PUT, "a", Setting("a", "2"))
    (frame,) = delta_frames(Category.SETTINGS, Version(E, 5), Version(E, 9), [early])
    assert Replica(catalog).handle(*unframe(frame)).outcome is Outcome.RESYNC
    assert catalog.version(Category.SETTINGS) == Version(E, 5)


def test_a_delta_may_end_past_its_last_event() -> None:
    """A registry loaded from its store numbers every category with the store revision."""
    catalog = Catalog()
    catalog.replace_category(Category.SETTINGS, [], Version(E, 5))
    put = ChangeEvent(6, Category.SETTINGS, Op.PUT, "a", Setting("a", "2"))
    (frame,) = delta_frames(Category.SETTINGS, Version(E, 5), Version(E, 9), [put])
    assert Replica(catalog).handle(*unframe(frame)).outcome is Outcome.APPLIED
    assert catalog.version(Category.SETTINGS) == Version(E, 9)
    assert catalog.get_setting("a") == "2"


def test_garbage_and_resync_pushes() -> None:
    replica = Replica(Catalog())
    assert replica.handle(PUSH_SNAPSHOT, b"\x00garbage").outcome is Outcome.RESYNC
    assert replica.handle("cascade.unknown", b"").outcome is Outcome.IGNORED
    body = encode_struct(ResyncF(category="*", reason="slow"))
    result = replica.handle(PUSH_RESYNC, body)
    assert result.outcome is Outcome.RESYNC
    assert "slow" in result.reason
    bad = SnapshotChunkF(
        category="objects", version=VersionF(epoch=E, revision=1), seq=3, total=2, payload=b"[]"
    )
    assert replica.handle(PUSH_SNAPSHOT, encode_struct(bad)).outcome is Outcome.RESYNC
    bad = SnapshotChunkF(category="nope", version=VersionF(epoch=E, revision=1), payload=b"[]")
    assert replica.handle(PUSH_SNAPSHOT, encode_struct(bad)).outcome is Outcome.RESYNC


def test_the_collector_is_paused_during_a_large_snapshot_and_resumed_after() -> None:
    import gc

    frames = snapshot_of(eps(200), 7, chunk=256)
    assert len(frames) >= 4
    replica = Replica(Catalog(), freeze_gc=True)
    replica.handle(*unframe(frames[0]))
    assert not gc.isenabled()  # between chunks too
    replica.reset()  # a dropped snapshot resumes it
    assert gc.isenabled()
    try:
        for frame in frames:
            result = replica.handle(*unframe(frame))
        assert result.outcome is Outcome.APPLIED
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # opted in: the new replica is frozen
    finally:
        gc.unfreeze()
