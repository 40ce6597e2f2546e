"""Record <-> row mapping and URL handling (no database needed)."""

from __future__ import annotations

import dataclasses

import pytest

from tarscascade.errors import InvalidRecordError, StoreError
from tarscascade.model import Category, EndpointRecord
from tarscascade.store import rows
from tarscascade.store.engine import normalize_url


@pytest.mark.parametrize("rt", rows.RECORD_TABLES, ids=lambda rt: rt.table.name)
def test_columns_are_the_model_fields_in_order(rt: rows.RecordTable) -> None:
    # load() builds records positionally: a field added to the model needs a column
    # (and a migration) or it would silently be lost.
    fields = [f.name for f in dataclasses.fields(rt.record_type)]
    assert [c.name for c in rt.table.columns] == fields


def test_keys_map_back_to_primary_keys() -> None:
    rt, pk = rows.identity(Category.OBJECTS, "A.B.Obj|10.0.0.1|80")
    assert rt is rows.ENDPOINTS
    assert pk == {"object_id": "A.B.Obj", "host": "10.0.0.1", "port": 80}
    assert rows.identity(Category.GROUPS, "rule|3")[1] == {"group_id": 3}
    assert rows.identity(Category.GROUPS, "priority|4")[1] == {"id": 4}
    assert rows.identity(Category.GROUPS, "rule|-1")[1] == {"group_id": -1}
    assert rows.identity(Category.NODES, "n|1")[1] == {"name": "n|1"}


@pytest.mark.parametrize(
    ("category", "key"),
    [
        (Category.OBJECTS, "no-port"),
        (Category.OBJECTS, "A.B.Obj|h|not-a-port"),
        (Category.GROUPS, "rule|x"),
        (Category.GROUPS, "other|1"),
        (Category.OBJECTS, "rule|5"),
        (Category.GROUPS, "rule|"),
        (Category.NODES, "n" * 601),
        ("bogus", "x"),
    ],
)
def test_malformed_keys_are_refused(category: Category, key: str) -> None:
    with pytest.raises(InvalidRecordError):
        rows.identity(category, key)


def test_over_long_text_and_out_of_range_ints_are_refused() -> None:
    with pytest.raises(InvalidRecordError, match="object_id must be text of at most 255"):
        rows.to_row(EndpointRecord("x" * 256, "h", 1))
    with pytest.raises(InvalidRecordError, match="not a 32-bit integer"):
        rows.to_row(EndpointRecord("A.B.Obj", "h", 2**31))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://u:p@db/tc", "mysql+pymysql://u:p@db/tc?charset=utf8mb4"),
        ("mariadb://u@db/tc", "mariadb+pymysql://u@db/tc?charset=utf8mb4"),
        ("mysql+pymysql://u@db/tc?charset=utf8", "mysql+pymysql://u@db/tc?charset=utf8"),
        ("postgresql://u@db/tc", "postgresql+psycopg://u@db/tc"),
        ("postgres://u@db/tc", "postgresql+psycopg://u@db/tc"),
        ("sqlite:////var/lib/tc.db", "sqlite:////var/lib/tc.db"),
        ("./tc.db", "sqlite:///./tc.db"),
    ],
)
def test_urls_get_our_drivers(url: str, expected: str) -> None:
    assert normalize_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "oracle://x/y"])
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreError):
        normalize_url(url)
