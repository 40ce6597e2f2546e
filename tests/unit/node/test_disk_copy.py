"""The node's disk copy: image + journal, bytes proportional to changes, crash- and
disk-full-safe (review E3)."""

from __future__ import annotations

import asyncio
import errno
import logging
from pathlib import Path

import pytest

from tarscascade.catalog import Catalog
from tarscascade.model import Category, ChangeEvent, EndpointRecord, Op, Setting, Version
from tarscascade.node.disk import DiskCopy, DiskOptions
from tarscascade.node.journal import JournalFile, journal_path, read_journal
from tarscascade.node.snapshot_file import read_image

E = "epoch-1"
OBJ = "App.Srv.Obj"


def ep(i: int, weight: int = -1) -> EndpointRecord:
    return EndpointRecord(f"{OBJ}{i % 50}", f"10.0.{i // 250}.{i % 250}", 1000 + i, weight=weight)


def filled(n: int) -> Catalog:
    cat = Catalog()
    cat.replace_category(Category.OBJECTS, [ep(i) for i in range(n)], Version(E, n))
    cat.replace_category(Category.SETTINGS, [Setting("a", "1")], Version(E, 1))
    return cat


def change(disk: DiskCopy, cat: Catalog, i: int, weight: int) -> None:
    """One single-endpoint delta, applied to the catalog and recorded, as the node does."""
    before = cat.version(Category.OBJECTS)
    rec = ep(i, weight)
    ev = ChangeEvent(before.revision + 1, Category.OBJECTS, Op.PUT, rec.key, rec)
    cat.apply([ev], E)
    disk.applied(Category.OBJECTS, before, cat.version(Category.OBJECTS), [ev])


def same(a: Catalog, b: Catalog) -> bool:
    return all(a.version(c) == b.version(c) and a.digest(c) == b.digest(c) for c in Category)


async def reloaded(tmp_path: Path) -> Catalog:
    back = Catalog()
    assert await DiskCopy(tmp_path, "n1", back).load() is not None
    return back


async def test_changes_append_bytes_proportional_to_them(tmp_path: Path) -> None:
    cat = filled(5_000)
    disk = DiskCopy(tmp_path, "n1", cat)
    await disk.write_once()  # the first image
    image_bytes = disk.stats.image_bytes
    assert image_bytes > 400_000
    before = disk.stats.bytes_written
    for i in range(100):
        change(disk, cat, i, weight=i)
        await disk.write_once()
    per_change = (disk.stats.bytes_written - before) / 100
    assert per_change < 1_000, per_change  # a few hundred bytes, not the ~MB replica
    assert disk.stats.images == 1
    assert same(await reloaded(tmp_path), cat)


async def test_an_image_written_while_changes_arrive_reloads_exactly(tmp_path: Path) -> None:
    cat = filled(20_000)
    disk = DiskCopy(tmp_path, "n1", cat, DiskOptions(slice_records=500))
    writing = asyncio.ensure_future(disk.write_once())
    for i in range(300):  # changes interleave with the slices of the image
        change(disk, cat, i * 37 % 20_000, weight=i)
        await asyncio.sleep(0)
    await writing
    await disk.write_once()  # what arrived during the image goes to its journal
    assert same(await reloaded(tmp_path), cat)
    image = await asyncio.to_thread(read_image, tmp_path)
    assert (
        image.categories[Category.OBJECTS].version.revision < cat.version(Category.OBJECTS).revision
    )  # the image was started before the last changes: the journal completes it


async def test_a_torn_journal_tail_loads_the_last_whole_state(tmp_path: Path) -> None:
    cat = filled(100)
    disk = DiskCopy(tmp_path, "n1", cat)
    await disk.write_once()
    for i in range(5):
        change(disk, cat, i, weight=i)
        await disk.write_once()
    good = Catalog()
    good.replace_category(
        Category.OBJECTS, list(cat.records(Category.OBJECTS)), cat.version(Category.OBJECTS)
    )
    change(disk, cat, 6, weight=6)
    await disk.write_once()
    path = journal_path(tmp_path, disk.image_id)
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # a crash in the middle of the last append
    back = await reloaded(tmp_path)
    assert back.version(Category.OBJECTS) == good.version(Category.OBJECTS)
    assert back.digest(Category.OBJECTS) == good.digest(Category.OBJECTS)
    # the torn tail is cut off when the journal is reopened, so later appends are readable
    again = DiskCopy(tmp_path, "n1", back)
    await again.load()
    change(again, back, 9, weight=9)
    await again.write_once()
    _records, end, total = read_journal(path, again.image_id)
    assert end == total
    assert same(await reloaded(tmp_path), back)


async def test_a_full_disk_backs_off_says_so_once_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cat = filled(100)
    disk = DiskCopy(tmp_path, "n1", cat, DiskOptions(flush_interval=0.0, retry_initial=0.01))
    await disk.write_once()
    honest = JournalFile.append
    failing = {"on": True}

    def append(self: JournalFile, chunks: list[bytes]) -> int:
        if failing["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return honest(self, chunks)

    monkeypatch.setattr(JournalFile, "append", append)
    task = asyncio.ensure_future(disk.run())
    try:
        with caplog.at_level(logging.INFO, logger="tarscascade.node.disk"):
            change(disk, cat, 1, weight=1)
            for _ in range(2000):
                await asyncio.sleep(0.001)
                if disk.stats.failures >= 4:
                    break
            assert disk.stats.failures >= 4
            assert disk.error is not None
            assert "No space" in disk.error
            assert disk.status()["error"] == disk.error
            change(disk, cat, 2, weight=2)  # kept while the disk fails
            failing["on"] = False
            for _ in range(2000):
                await asyncio.sleep(0.001)
                if disk.error is None and not disk._pending:
                    break
            assert disk.error is None
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # said once, not at every retry
        assert any("written again" in r.getMessage() for r in caplog.records)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert same(await reloaded(tmp_path), cat)


async def test_an_objects_snapshot_is_followed_by_a_new_image(tmp_path: Path) -> None:
    cat = filled(100)
    disk = DiskCopy(tmp_path, "n1", cat)
    await disk.write_once()
    first = disk.image_id
    cat.replace_category(Category.OBJECTS, [ep(i) for i in range(200, 260)], Version(E, 500))
    disk.applied(Category.OBJECTS, Version(E, 100), Version(E, 500), None)
    await disk.write_once()
    assert disk.image_id != first
    assert not journal_path(tmp_path, first).exists()  # the old pair is gone
    assert same(await reloaded(tmp_path), cat)
