"""Category content digests: the two schemes, in one place (docs/protocol.md, "Digests").

A category's digest is the sum of a per-record hash over its records, modulo a power
of two: order-independent and maintained incrementally (a put adds the new record's
hash and subtracts the old one's). Two schemes:

* **v2** (protocol 3, what ``Catalog.digest`` means): blake2b-128 of the record's
  canonical bytes *keyed* with the tier's secret, summed mod 2**128. The key matters
  more than the width: an additive sum of unkeyed hashes yields to Wagner's k-list
  (generalized birthday) method — whoever can write records can pick a set of them
  whose hashes sum to any target, at 128 bits too — and the digest is the proof behind
  "up to date", adopt and bookmark. Without the key a writer cannot compute a record's
  hash offline; the width keeps an online oracle (write, read the digest) out of reach.
  The empty key is plain blake2b-128 (standalone catalogs, tests).
* **legacy** (protocol 1 and 2 peers): unkeyed blake2b-64 summed mod 2**64. A table
  computes it only once something asks (``Catalog.legacy_digest``): a first O(n) pass,
  then it is kept incrementally like the v2 sum. Hashing twice costs about as much as
  the rest of a snapshot apply, so a tier without old peers never pays it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from enum import Enum

from tarscascade.model import (
    DIGEST_MOD,
    LEGACY_DIGEST_MOD,
    Record,
    canonical_bytes,
    legacy_record_digest,
)

__all__ = [
    "DIGEST_MOD",
    "KEY_ID_BYTES",
    "LEGACY_DIGEST_MOD",
    "MAX_KEY_BYTES",
    "Hasher",
    "Scheme",
    "check_key",
    "key_id",
    "legacy_record_digest",
    "legacy_sum",
]

#: blake2b takes keys of up to 64 bytes; a tier key is 16 to 32 random bytes
MAX_KEY_BYTES = 64
#: a key id is this many bytes of a hash of the key (what a downstream says it holds)
KEY_ID_BYTES = 8
_KEY_ID_PERSON = b"tc-digest-keyid"

RecordHash = Callable[[Record], int]


class Scheme(Enum):
    """Which digest a peer's digests can be compared with (negotiated in subscribe)."""

    #: 128-bit keyed, under the same key (protocol 3, key ids equal)
    V2 = "v2"
    #: the 64-bit unkeyed sum (a protocol 1/2 peer)
    LEGACY = "legacy"
    #: not comparable (a protocol 3 peer under another key, until it rekeys)
    NONE = "none"


def check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) > MAX_KEY_BYTES:
        raise ValueError(f"a digest key is at most {MAX_KEY_BYTES} bytes")
    return key


def key_id(key: bytes) -> bytes:
    """A short public name of a key: equal ids, comparable digests. It reveals nothing
    of the key (a keyed-domain hash of it)."""
    return hashlib.blake2b(check_key(key), digest_size=KEY_ID_BYTES, person=_KEY_ID_PERSON).digest()


class Hasher:
    """The v2 per-record hash under one key; the keyed state is built once and copied
    per record (measured faster than constructing a keyed blake2b each time)."""

    __slots__ = ("_proto", "key", "key_id")

    def __init__(self, key: bytes = b"") -> None:
        self.key = check_key(key)
        self.key_id = key_id(key)
        self._proto = hashlib.blake2b(digest_size=16, key=key)

    def __call__(self, record: Record) -> int:
        h = self._proto.copy()
        h.update(canonical_bytes(record))
        return _from_bytes(h.digest(), "big")

    def sum(self, records: Iterable[Record]) -> int:
        return sum(map(self, records)) % DIGEST_MOD


def legacy_sum(records: Iterable[Record]) -> int:
    """The legacy digest of ``records`` computed once (a disk copy from before v2)."""
    return sum(map(legacy_record_digest, records)) % LEGACY_DIGEST_MOD


#: the unkeyed hasher (a catalog without a key)
UNKEYED = Hasher(b"")

_from_bytes = int.from_bytes
