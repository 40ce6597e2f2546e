"""The last-known-good file: round trip, and every kind of damage refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tarscascade.model import Category, Version
from tarscascade.node.snapshot_file import (
    FILE_NAME,
    CategoryImage,
    ReplicaImage,
    SnapshotError,
    read_image,
    write_image,
)


def image() -> ReplicaImage:
    return ReplicaImage(
        "node-1",
        1700000000.5,
        {
            Category.OBJECTS: CategoryImage(Version("ep", 42), 2**64 - 5, 3, b"[objects]" * 100),
            Category.NODES: CategoryImage(Version("ep", 40), 7, 1, b"[nodes]"),
            Category.GROUPS: CategoryImage(Version("ep", 0), 0, 0, b""),
        },
    )


def test_round_trip(tmp_path: Path) -> None:
    write_image(tmp_path, image())
    assert read_image(tmp_path) == image()
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temp files left


def test_rewrite_replaces_atomically(tmp_path: Path) -> None:
    write_image(tmp_path, image())
    newer = ReplicaImage(
        "node-1", 1.0, {Category.SETTINGS: CategoryImage(Version("e", 1), 1, 1, b"x")}
    )
    write_image(tmp_path, newer)
    assert read_image(tmp_path) == newer


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # torn
        lambda b: b[:40] + bytes([b[40] ^ 0xFF]) + b[41:],  # a flipped byte
        lambda b: b"not a snapshot at all" * 3,
        lambda b: b"",
    ],
    ids=["torn", "flipped", "foreign", "empty"],
)
def test_damaged_files_are_refused(tmp_path: Path, damage: object) -> None:
    path = write_image(tmp_path, image())
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(SnapshotError):
        read_image(tmp_path)


def test_missing_file_is_a_snapshot_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no snapshot"):
        read_image(tmp_path / "nowhere")
