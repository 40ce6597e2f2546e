"""Digest v2: 128-bit, keyed; the legacy 64-bit sum only when asked for; malformed
128-bit digests refused."""

from __future__ import annotations

import pytest

from tarscascade.cascade.states import BadRequestError, held_states, parse_held
from tarscascade.catalog import Catalog
from tarscascade.catalog.digests import Scheme, legacy_sum
from tarscascade.model import Category, EndpointRecord, Setting, Version

E = "e"


def filled(key: bytes = b"") -> Catalog:
    cat = Catalog(digest_key=key)
    eps = [EndpointRecord("A.B.Obj", "10.0.0.1", p) for p in range(50)]
    cat.replace_category(Category.OBJECTS, eps, Version(E, 3))
    cat.replace_category(Category.SETTINGS, [Setting("a", "1")], Version(E, 3))
    return cat


def test_same_content_under_one_key_is_equal_under_two_keys_differs() -> None:
    a, b, c = filled(b"k1"), filled(b"k1"), filled(b"k2")
    for cat in (Category.OBJECTS, Category.SETTINGS):
        assert a.digest(cat) == b.digest(cat)
        assert a.digest(cat) != c.digest(cat)
        assert a.digest(cat) < 2**128
    assert a.key_id == b.key_id != c.key_id


def test_rekey_recomputes_every_sum() -> None:
    a, b = filled(b"k1"), filled(b"k2")
    assert a.rekey(b"k2")
    assert not a.rekey(b"k2")  # already
    for cat in Category:
        assert a.digest(cat) == b.digest(cat)


def test_the_legacy_sum_is_kept_only_once_asked_for_then_incrementally() -> None:
    cat = filled()
    assert not cat.legacy_enabled
    d = cat.legacy_digest(Category.OBJECTS)
    assert cat.legacy_enabled
    assert d == legacy_sum(cat.records(Category.OBJECTS)) < 2**64
    from tarscascade.model import ChangeEvent, Op

    r = EndpointRecord("A.B.Obj", "10.0.0.2", 1)
    cat.apply([ChangeEvent(4, Category.OBJECTS, Op.PUT, r.key, r)], E)
    assert cat.legacy_digest(Category.OBJECTS) == legacy_sum(cat.records(Category.OBJECTS))
    cat.rekey(b"x")  # rekeying leaves the legacy sum alone
    assert cat.legacy_digest(Category.OBJECTS) == legacy_sum(cat.records(Category.OBJECTS))


@pytest.mark.parametrize("n", [1, 15, 17, 32])
def test_a_digest128_not_16_bytes_is_a_bad_request(n: int) -> None:
    states = held_states(filled())
    states[0].digest128 = b"\x01" * n
    for scheme in (None, Scheme.V2, Scheme.LEGACY, Scheme.NONE):
        with pytest.raises(BadRequestError):
            parse_held(states, scheme)


def test_held_states_carry_the_legacy_digest_only_when_kept() -> None:
    cat = filled()
    assert all(st.digest == 0 and len(st.digest128) == 16 for st in held_states(cat))
    cat.enable_legacy()
    held = parse_held(held_states(cat), Scheme.LEGACY)
    assert held[Category.OBJECTS].digest == cat.legacy_digest(Category.OBJECTS)
    held = parse_held(held_states(cat), Scheme.V2)
    assert held[Category.OBJECTS].digest == cat.digest(Category.OBJECTS)
    assert parse_held(held_states(cat), Scheme.NONE)[Category.OBJECTS].digest is None
