"""A node keeps its tier's digest key beside its disk copy (``digest.key``, 0600): a
restarted node subscribes under that key and rekeys nothing."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

from tarscascade.cascade import encode_records
from tarscascade.catalog import Catalog
from tarscascade.catalog.digests import legacy_sum
from tarscascade.model import Category, EndpointRecord, Version
from tarscascade.node.disk import DiskCopy
from tarscascade.node.snapshot_file import (
    KEY_FILE,
    CategoryImage,
    ReplicaImage,
    read_keys,
    write_image,
)
from tarscascade.testing import eventually
from tests.integration.node.test_node_agent import OBJ, admin, node, registry


async def test_a_restarted_node_keeps_the_key_and_rekeys_nothing(tmp_path: Path) -> None:
    rp = await registry(tmp_path)
    assert rp.core is not None
    tier = rp.core.catalog
    data = tmp_path / "n"
    up = [("127.0.0.1", rp.tars_port)]
    try:
        n = node("n", up, data)
        try:
            await n.start()
            assert n.client is not None
            a = admin(rp)
            await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.1 -p 2001"))
            await eventually(lambda: bool(n.catalog.get_object(OBJ)), timeout=20)
            assert n.client.stats.rekeys == 1  # a fresh node: the tier's key, once
            await eventually(lambda: read_keys(data) == [tier.digest_key], timeout=20)
            assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
        finally:
            await n.aclose()
        again = node("n", up, data)
        try:
            await again.start()
            assert again.loaded_from_disk
            assert again.client is not None
            await asyncio.wait_for(again.client.synced.wait(), 20)
            assert again.catalog.key_id == tier.key_id
            assert again.client.stats.rekeys == 0  # it subscribed under the tier's key
            assert again.client.stats.resyncs == 0
            assert again.catalog.digest(Category.OBJECTS) == tier.digest(Category.OBJECTS)
            assert rp.hub is not None
            assert rp.hub.stats.snapshots_sent == 4  # the first node's, none for the restart
        finally:
            await again.aclose()
    finally:
        await rp.aclose()


async def test_a_copy_without_its_key_file_still_starts(tmp_path: Path) -> None:
    """A disk copy from before the key file: its image names no key (the empty key)
    and loads; one whose key file is gone is not used (its digests cannot be checked)."""
    rp = await registry(tmp_path)
    data = tmp_path / "n"
    up = [("127.0.0.1", rp.tars_port)]
    try:
        n = node("n", up, data)
        try:
            await n.start()
            a = admin(rp)
            await a.add_endpoint(a.build_endpoint(OBJ, "tcp -h 10.0.0.1 -p 2001"))
            await eventually(lambda: bool(n.catalog.get_object(OBJ)), timeout=20)
            await eventually(lambda: (data / KEY_FILE).exists(), timeout=20)
        finally:
            await n.aclose()
    finally:
        await rp.aclose()
    (data / KEY_FILE).unlink()
    gone = node("n", [("127.0.0.1", 1)], data)  # no registry: what the disk gives only
    await gone.start()
    try:
        assert not gone.loaded_from_disk
    finally:
        await gone.aclose()


async def test_an_image_from_before_the_key_file_loads(tmp_path: Path) -> None:
    """A version 1 image with legacy digests and no key file: loads, checked once with
    the legacy sum, under the empty key."""
    records = [EndpointRecord(OBJ, "10.0.0.1", p) for p in (1, 2)]
    v = Version("e", 2)
    write_image(
        tmp_path,
        ReplicaImage(
            "n",
            time.time(),
            {
                Category.OBJECTS: CategoryImage(
                    v, legacy_sum(records), 2, encode_records(records), legacy=True
                )
            },
        ),
    )
    catalog = Catalog()
    disk = DiskCopy(tmp_path, "n", catalog)
    assert await disk.load() is not None
    assert catalog.version(Category.OBJECTS) == v
    assert sorted(r.port for r in catalog.get_object(OBJ)) == [1, 2]
    assert catalog.digest_key == b""
