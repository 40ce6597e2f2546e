"""Load balancing with TARS semantics (§4.3): round robin, static weight, hash, consistent
hash; shielded and inactive endpoints; the try-one-anyway fallback. Pure, no I/O."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tarscascade.client.balance import (
    Addr,
    Balancer,
    addr_of,
    hash_code,
    ring_point,
    weight_schedule,
)
from tarscascade.wire.endpoint import Endpoint


def ep(port: int, weight: int = -1, weight_type: int = 0) -> Endpoint:
    return Endpoint("tcp", "10.0.0.1", port, weight=weight, weight_type=weight_type)


class FakeHealth:
    """Blocked endpoints refuse; counts allow() calls; remembers connect failures."""

    def __init__(self, blocked: set[int] = frozenset(), refused: set[int] = frozenset()):  # type: ignore[assignment]
        self.blocked = set(blocked)
        self.refused = set(refused)
        self.asked: list[int] = []

    def allow(self, key: Addr) -> bool:
        self.asked.append(key[2])
        return key[2] not in self.blocked

    def connect_failed(self, key: Addr) -> bool:
        return key[2] in self.refused


def ports(b: Balancer, health: FakeHealth, n: int, **kw: object) -> list[int]:
    out = []
    for _ in range(n):
        e = b.pick(health, **kw)  # type: ignore[arg-type]
        assert e is not None
        out.append(e.port)
    return out


# -- round robin
def test_round_robin_cycles_over_active_endpoints_in_order() -> None:
    b = Balancer()
    b.update([ep(1), ep(2), ep(3)], [ep(9)])
    assert b.mode == "round_robin"
    assert ports(b, FakeHealth(), 7) == [1, 2, 3, 1, 2, 3, 1]


def test_round_robin_skips_shielded_endpoints_and_uses_them_again_when_allowed() -> None:
    b = Balancer()
    b.update([ep(1), ep(2), ep(3)])
    h = FakeHealth(blocked={2})
    assert ports(b, h, 4) == [1, 3, 1, 3]
    h.blocked.clear()
    assert ports(b, h, 3) == [1, 2, 3]


def test_no_active_endpoint_means_no_pick() -> None:
    b = Balancer()
    assert b.pick(FakeHealth()) is None
    b.update([], [ep(1)])  # only inactive ones: never called
    assert b.pick(FakeHealth()) is None
    assert b.pick(FakeHealth(), hash_key=5) is None


def test_duplicates_are_dropped_and_active_wins_over_inactive() -> None:
    b = Balancer()
    b.update([ep(1), ep(1), ep(2)], [ep(2), ep(3)])
    assert [e.port for e in b.active] == [1, 2]
    assert [e.port for e in b.inactive] == [3]


def test_a_new_list_keeps_the_rotation_going() -> None:
    b = Balancer()
    b.update([ep(1), ep(2), ep(3)])
    assert ports(b, FakeHealth(), 2) == [1, 2]
    b.update([ep(1), ep(3)])
    assert ports(b, FakeHealth(), 2) == [1, 3]


# -- all shielded: try one anyway
def test_when_every_endpoint_is_shielded_one_is_tried_preferring_connectable() -> None:
    b = Balancer(random.Random(1))
    b.update([ep(1), ep(2), ep(3)])
    h = FakeHealth(blocked={1, 2, 3}, refused={1, 3})
    assert set(ports(b, h, 20)) == {2}


def test_when_every_endpoint_is_shielded_and_refused_any_is_tried() -> None:
    b = Balancer(random.Random(1))
    b.update([ep(1), ep(2)])
    h = FakeHealth(blocked={1, 2}, refused={1, 2})
    assert set(ports(b, h, 40)) == {1, 2}


def test_excluded_endpoints_are_never_picked_even_as_a_last_resort() -> None:
    b = Balancer(random.Random(1))
    b.update([ep(1), ep(2)])
    h = FakeHealth(blocked={1, 2})
    ex = {addr_of(ep(1))}
    assert set(ports(b, h, 10, exclude=ex)) == {2}
    assert b.pick(h, exclude={addr_of(ep(1)), addr_of(ep(2))}) is None


# -- static weight
def test_weight_schedule_is_proportional_and_interleaved() -> None:
    sched = weight_schedule([30, 10, 20])  # gcd 10: 3, 1, 2
    assert Counter(sched) == {0: 3, 1: 1, 2: 2}
    assert len(sched) == 6
    assert sched[0] != sched[1]  # not 0,0,0,...: spread out
    assert weight_schedule([0, 0]) == []


def test_static_weight_distributes_in_proportion() -> None:
    b = Balancer()
    b.update([ep(1, 100, 1), ep(2, 50, 1), ep(3, 10, 1)])
    assert b.mode == "weight"
    got = Counter(ports(b, FakeHealth(), 160))  # 10 full cycles of 16 slots
    assert got == {1: 100, 2: 50, 3: 10}


def test_static_weight_drops_zero_weights() -> None:
    b = Balancer()
    b.update([ep(1, 10, 1), ep(2, 0, 1)])
    assert set(ports(b, FakeHealth(), 10)) == {1}


def test_static_weight_skips_shielded_endpoints() -> None:
    b = Balancer()
    b.update([ep(1, 50, 1), ep(2, 50, 1), ep(3, 100, 1)])
    got = Counter(ports(b, FakeHealth(blocked={3}), 100))
    assert got == {1: 50, 2: 50}


def test_dynamic_weights_degrade_to_static_with_one_note(caplog: pytest.LogCaptureFixture) -> None:
    b = Balancer()
    with caplog.at_level("INFO"):
        b.update([ep(1, 100, 2), ep(2, 50, 1), ep(3, 10, 2)])
        b.update([ep(1, 100, 2), ep(2, 50, 1), ep(3, 10, 2)])
    assert b.mode == "weight"
    assert Counter(ports(b, FakeHealth(), 160)) == {1: 100, 2: 50, 3: 10}
    notes = [m for m in caplog.messages if "weightType 2" in m]
    assert len(notes) == 1


def test_mixed_weight_types_fall_back_to_round_robin() -> None:
    b = Balancer()
    b.update([ep(1, 90, 1), ep(2)])
    assert b.mode == "round_robin"
    assert ports(b, FakeHealth(), 4) == [1, 2, 1, 2]


def test_all_zero_weights_fall_back_to_round_robin() -> None:
    b = Balancer()
    b.update([ep(1, 0, 1), ep(2, 0, 1)])
    assert b.mode == "round_robin"
    assert ports(b, FakeHealth(), 2) == [1, 2]


# -- hash
def test_hash_codes_are_stable() -> None:
    assert hash_code(7) == 7
    assert hash_code("user-1") == hash_code(b"user-1") == 2116437524  # zlib.crc32
    assert ring_point("k") == ring_point(b"k")
    assert ring_point(7) == ring_point("7")


def test_hash_maps_a_key_to_one_endpoint_over_the_registered_list() -> None:
    b = Balancer()
    b.update([ep(3), ep(1), ep(2)])  # order as received does not matter: sorted by addr
    assert ports(b, FakeHealth(), 3, hash_key=0) == [1, 1, 1]
    assert ports(b, FakeHealth(), 1, hash_key=4) == [2]
    assert ports(b, FakeHealth(), 1, hash_key=5) == [3]


def test_hash_is_stable_when_an_endpoint_turns_inactive() -> None:
    b = Balancer()
    b.update([ep(1), ep(2), ep(3)])
    before = {k: ports(b, FakeHealth(), 1, hash_key=k)[0] for k in range(30)}
    b.update([ep(1), ep(3)], [ep(2)])  # 2 turns inactive: still registered
    after = {k: ports(b, FakeHealth(), 1, hash_key=k)[0] for k in range(30)}
    for k in range(30):
        if before[k] != 2:
            assert after[k] == before[k], k  # keys of other endpoints do not move
        else:
            assert after[k] in (1, 3)
    b.update([ep(1), ep(2), ep(3)])  # back: its keys come back
    assert {k: ports(b, FakeHealth(), 1, hash_key=k)[0] for k in range(30)} == before


def test_hash_rehashes_over_active_endpoints_when_the_target_is_shielded() -> None:
    b = Balancer()
    b.update([ep(1), ep(2), ep(3)])
    # key 4 -> registered[1] = port 2 (shielded) -> active [1,2,3][4 % 3 = 1] = 2 again
    # (shielded, dropped) -> [1,3][4 % 2 = 0] = 1
    assert ports(b, FakeHealth(blocked={2}), 1, hash_key=4) == [1]


def test_hash_with_every_endpoint_shielded_tries_one() -> None:
    b = Balancer(random.Random(3))
    b.update([ep(1), ep(2)])
    assert ports(b, FakeHealth(blocked={1, 2}, refused={1}), 3, hash_key=9) == [2, 2, 2]


# -- consistent hash
def keyset(b: Balancer, h: FakeHealth, n: int = 2000) -> dict[str, int]:
    return {f"user-{i}": ports(b, h, 1, hash_key=f"user-{i}", consistent=True)[0] for i in range(n)}


def test_consistent_hash_spreads_keys_over_every_endpoint() -> None:
    b = Balancer()
    b.update([ep(1), ep(2), ep(3), ep(4)])
    got = Counter(keyset(b, FakeHealth()).values())
    assert set(got) == {1, 2, 3, 4}
    assert min(got.values()) > 2000 / 4 * 0.6  # ketama: roughly even


@pytest.mark.parametrize("how", ["inactive", "shielded"])
def test_consistent_hash_moves_only_the_keys_of_an_unusable_endpoint(how: str) -> None:
    b = Balancer()
    b.update([ep(1), ep(2), ep(3), ep(4)])
    before = keyset(b, FakeHealth())
    h = FakeHealth()
    if how == "inactive":
        b.update([ep(1), ep(3), ep(4)], [ep(2)])
    else:
        h.blocked.add(2)
    after = keyset(b, h)
    moved = {k for k in before if before[k] != after[k]}
    assert moved == {k for k in before if before[k] == 2}
    assert 2 not in after.values()
    # they spread over the others instead of all landing on one
    assert len({after[k] for k in moved}) >= 2
    h.blocked.clear()
    b.update([ep(1), ep(2), ep(3), ep(4)])
    assert keyset(b, h) == before


def test_consistent_hash_removal_moves_only_the_removed_endpoints_keys() -> None:
    b = Balancer()
    b.update([ep(1), ep(2), ep(3), ep(4)])
    before = keyset(b, FakeHealth())
    b.update([ep(1), ep(2), ep(4)])  # 3 removed outright
    after = keyset(b, FakeHealth())
    assert all(after[k] == before[k] for k in before if before[k] != 3)


def test_consistent_hash_with_every_endpoint_shielded_tries_one() -> None:
    b = Balancer(random.Random(1))
    b.update([ep(1), ep(2)])
    got = ports(b, FakeHealth(blocked={1, 2}, refused={2}), 5, hash_key="x", consistent=True)
    assert set(got) == {1}
