"""Load balancing over an object's endpoints with TARS client semantics (§4.3), pure.

* **Round robin** over the active endpoints (TarsCpp ``getNextValidProxy``), skipping
  those the shield does not allow.
* **Static weight** when every active endpoint has ``weightType`` 1: endpoints with a
  weight <= 0 are dropped, the rest are visited in a fixed, interleaved schedule in
  proportion to their weights; mixed weight types fall back to round robin. Dynamic
  weights (``weightType`` 2, load-reported) are not implemented: they count as static
  weights, with a logged note.
* **Hash** by a caller key: ``key % n`` over the *registered* list (active + inactive,
  ordered by ``transport:host:port``), so the mapping does not move when an endpoint
  turns inactive; when the hashed endpoint is inactive or shielded the key is hashed
  again over the remaining active endpoints (TarsCpp ``getHashProxyForNormal``).
* **Consistent hash**: a ketama ring (160 points per endpoint) over the registered list;
  a key whose endpoint is inactive or shielded walks clockwise to the next usable one,
  so only that endpoint's keys move.

When no endpoint is usable, one is tried anyway (TarsCpp): chosen at random, preferring
endpoints whose last connect did not fail. The shield is consulted through
:class:`Health` (``allow`` may grant a blocked endpoint its retry).
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import random
import zlib
from collections.abc import Collection, Sequence
from math import gcd
from typing import Protocol

from tarscascade.wire.endpoint import Endpoint

log = logging.getLogger(__name__)

#: weightType values: 0 round robin, 1 static, 2 dynamic (taken as static here)
STATIC_WEIGHT, DYNAMIC_WEIGHT = 1, 2

#: an endpoint's identity: (transport, host, port)
Addr = tuple[str, str, int]
HashKey = int | str | bytes

#: ketama: 40 md5 digests x 4 points per endpoint
RING_DIGESTS = 40


def addr_of(ep: Endpoint) -> Addr:
    return (ep.transport, ep.host, ep.port)


def addr_text(addr: Addr) -> str:
    return f"{addr[0]}:{addr[1]}:{addr[2]}"


class Health(Protocol):
    def allow(self, key: Addr) -> bool: ...

    def connect_failed(self, key: Addr) -> bool: ...


def hash_code(key: HashKey) -> int:
    """A non-negative integer for ``key``: ints as they are, text by CRC-32 (stable
    across processes, unlike ``hash``)."""
    if isinstance(key, int):
        return key
    data = key.encode("utf-8") if isinstance(key, str) else key
    return zlib.crc32(data)


def ring_point(key: HashKey) -> int:
    """Where ``key`` falls on the consistent-hash ring (ketama: md5, 32 bits)."""
    if isinstance(key, int):
        data = str(key).encode()
    elif isinstance(key, str):
        data = key.encode("utf-8")
    else:
        data = key
    return int.from_bytes(hashlib.md5(data, usedforsecurity=False).digest()[:4], "little")


def weight_schedule(weights: Sequence[int]) -> list[int]:
    """Indices in an interleaved order, each ``i`` appearing ``weights[i] / gcd`` times.

    Entry ``k`` of endpoint ``i`` sits at ``(k + 0.5) / w_i`` (Sainte-Laguë), so heavy
    endpoints are spread out instead of served in bursts.
    """
    g = 0
    for w in weights:
        g = gcd(g, w)
    if g == 0:
        return []
    slots = sorted(((k + 0.5) / (w // g), i) for i, w in enumerate(weights) for k in range(w // g))
    return [i for _, i in slots]


class Balancer:
    """Picks an endpoint per call. ``update()`` with each new list; ``pick()`` per call."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self.active: tuple[Endpoint, ...] = ()
        self.inactive: tuple[Endpoint, ...] = ()
        self._active_addrs: frozenset[Addr] = frozenset()
        self._registered: tuple[Endpoint, ...] = ()
        self._rr = -1
        self._weighted: tuple[Endpoint, ...] = ()
        self._schedule: list[int] = []
        self._wpos = 0
        self._ring: tuple[list[int], list[int]] | None = None
        self._noted = False  # the dynamic-weight note was logged

    # -- list updates
    def update(self, active: Sequence[Endpoint], inactive: Sequence[Endpoint] = ()) -> None:
        seen: set[Addr] = set()
        act: list[Endpoint] = []
        for ep in active:
            if addr_of(ep) not in seen:
                seen.add(addr_of(ep))
                act.append(ep)
        ina: list[Endpoint] = []
        for ep in inactive:
            if addr_of(ep) not in seen:
                seen.add(addr_of(ep))
                ina.append(ep)
        self.active, self.inactive = tuple(act), tuple(ina)
        self._active_addrs = frozenset(addr_of(e) for e in act)
        self._registered = tuple(sorted(act + ina, key=addr_of))
        self._ring = None  # rebuilt lazily by the first consistent-hash pick
        if act and any(e.weight_type == DYNAMIC_WEIGHT for e in act) and not self._noted:
            self._noted = True
            log.info(
                "weightType 2 (dynamic weights) is not implemented: using the endpoints' "
                "weights as static weights"
            )
        if act and all(e.weight_type in (STATIC_WEIGHT, DYNAMIC_WEIGHT) for e in act):
            self._weighted = tuple(e for e in act if e.weight > 0)
            self._schedule = weight_schedule([e.weight for e in self._weighted])
        else:
            self._weighted, self._schedule = (), []
        self._wpos = self._wpos % len(self._schedule) if self._schedule else 0

    @property
    def mode(self) -> str:
        """``"weight"`` when static weights apply to the current list, else ``"round_robin"``."""
        return "weight" if self._schedule else "round_robin"

    # -- picking
    def pick(
        self,
        health: Health,
        *,
        hash_key: HashKey | None = None,
        consistent: bool = False,
        exclude: Collection[Addr] = (),
    ) -> Endpoint | None:
        """The endpoint for one call, or None when there is no active endpoint left."""
        if not self.active:
            return None
        if hash_key is not None:
            ep = (
                self._pick_consistent(health, ring_point(hash_key), exclude)
                if consistent
                else self._pick_hash(health, hash_code(hash_key), exclude)
            )
        elif self._schedule:
            ep = self._pick_weighted(health, exclude)
        else:
            ep = self._pick_round_robin(health, exclude)
        return ep if ep is not None else self._fallback(health, exclude)

    def _usable(self, ep: Endpoint, health: Health, exclude: Collection[Addr]) -> bool:
        a = addr_of(ep)
        return a in self._active_addrs and a not in exclude and health.allow(a)

    def _pick_round_robin(self, health: Health, exclude: Collection[Addr]) -> Endpoint | None:
        eps = self.active
        n = len(eps)
        for step in range(1, n + 1):
            i = (self._rr + step) % n
            if self._usable(eps[i], health, exclude):
                self._rr = i
                return eps[i]
        return None

    def _pick_weighted(self, health: Health, exclude: Collection[Addr]) -> Endpoint | None:
        sched, eps = self._schedule, self._weighted
        n = len(sched)
        bad: set[int] = set()
        for step in range(n):
            pos = (self._wpos + step) % n
            i = sched[pos]
            if i in bad:
                continue
            if self._usable(eps[i], health, exclude):
                self._wpos = (pos + 1) % n
                return eps[i]
            bad.add(i)
            if len(bad) == len(eps):
                break
        return None

    def _pick_hash(self, health: Health, code: int, exclude: Collection[Addr]) -> Endpoint | None:
        reg = self._registered
        ep = reg[code % len(reg)]
        if self._usable(ep, health, exclude):
            return ep
        # hash again over the active endpoints, dropping each unusable one
        cands = sorted(self.active, key=addr_of)
        while cands:
            i = code % len(cands)
            if self._usable(cands[i], health, exclude):
                return cands[i]
            del cands[i]
        return None

    def _build_ring(self) -> tuple[list[int], list[int]]:
        pts: list[tuple[int, int]] = []
        for idx, ep in enumerate(self._registered):
            desc = addr_text(addr_of(ep))
            for d in range(RING_DIGESTS):
                digest = hashlib.md5(f"{desc}-{d}".encode(), usedforsecurity=False).digest()
                for j in range(4):
                    pts.append((int.from_bytes(digest[4 * j : 4 * j + 4], "little"), idx))
        pts.sort()
        return [p for p, _ in pts], [i for _, i in pts]

    def _pick_consistent(
        self, health: Health, point: int, exclude: Collection[Addr]
    ) -> Endpoint | None:
        if self._ring is None:
            self._ring = self._build_ring()
        points, owners = self._ring
        reg = self._registered
        start = bisect.bisect_left(points, point)
        tried: set[int] = set()
        for step in range(len(points)):
            idx = owners[(start + step) % len(points)]
            if idx in tried:
                continue
            tried.add(idx)
            if self._usable(reg[idx], health, exclude):
                return reg[idx]
            if len(tried) == len(reg):
                break
        return None

    def _fallback(self, health: Health, exclude: Collection[Addr]) -> Endpoint | None:
        """Every active endpoint is shielded: try one anyway, as TARS does."""
        pool = [e for e in self.active if addr_of(e) not in exclude]
        if not pool:
            return None
        fresh = [e for e in pool if not health.connect_failed(addr_of(e))]
        return self._rng.choice(fresh or pool)

    def __repr__(self) -> str:
        return f"<Balancer {self.mode} active={len(self.active)} inactive={len(self.inactive)}>"
