"""The tier's sightings table, on every database: the judge reads back the others'
sightings only (its own are in its liveness already; alone, it reads nothing)."""

from __future__ import annotations

from tarscascade.model import Version
from tarscascade.store import SqlStore
from tarscascade.store.presence import Sighting


def test_newest_besides_a_registry_leaves_its_sightings_out(store: SqlStore) -> None:
    table = store.presence
    table.record("reg-a", [Sighting("n1", 1.0), Sighting("shared", 50.0)])
    table.record("reg-b", [Sighting("n2", 2.0, Version("e", 3)), Sighting("shared", 5.0)])
    every = table.newest()
    assert set(every) == {"n1", "n2", "shared"}
    assert every["shared"] < 50.0 - 10  # the newest over both: b's
    others = table.newest("reg-a")
    assert set(others) == {"n2", "shared"}
    assert 5.0 <= others["shared"] < 50.0
    assert table.newest("reg-b").keys() == {"n1", "shared"}
