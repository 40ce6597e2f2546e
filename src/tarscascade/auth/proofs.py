"""Proofs: what a node sends through a relay instead of its secret.

``tcp1/<purpose>/<audience>/<issued_ms>/<mac>``, with ``mac`` = base64url of
HMAC-SHA256(node key, purpose, node name, audience, issued_ms, content digest).

* ``relayed`` (audience: the relay's node name): "I, N, am connected to relay R now".
  The leaf sends one in its subscribe and a fresh one in every heartbeat; the relay lists
  the latest with the leaf in its own heartbeat, and the registry accepts the relay's
  claim about N only with a valid proof naming that relay (or a relay that is itself an
  accepted descendant of it) issued within ``PROOF_MAX_AGE_S``. So a relay can claim only
  leaves that authenticated to it, and only while they keep doing so: a dead leaf's
  proofs age out and liveness judges it.
* ``report`` (audience ""): covers the report's content (a digest of its states); the
  registry also wants ``issued_ms`` to grow per node, so a relay can neither alter nor
  replay a leaf's report.

Why an HMAC under a key the registry stores rather than the secret: the secret would
let the relay act as the leaf everywhere; a proof is good for one claim, to one relay,
for a minute. Why time and not an upstream challenge: relays need no extra round trip,
and the price is that node clocks stay within ``CLOCK_SKEW_S`` of the registry's (NTP).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tarscascade.auth.secrets import credential_equal

PROOF_PREFIX = "tcp1"
PURPOSE_RELAYED = "relayed"
PURPOSE_REPORT = "report"
#: a relayed-descendant proof older than this no longer vouches for the leaf
PROOF_MAX_AGE_S = 90.0
#: how far a node's clock may be ahead of the registry's
CLOCK_SKEW_S = 30.0
_DOMAIN = b"tarscascade proof v1"
_SHAPE = re.compile(
    r"tcp1/(relayed|report)/([A-Za-z0-9_.:@\-]{0,128})/([0-9]{1,16})/([A-Za-z0-9_\-]{43})"
)


@dataclass(frozen=True, slots=True)
class Proof:
    purpose: str
    audience: str
    issued_ms: int
    mac: str
    text: str


def _mac(key: bytes, purpose: str, name: str, audience: str, issued_ms: int, digest: bytes) -> str:
    msg = b"\x00".join(
        (_DOMAIN, purpose.encode(), name.encode(), audience.encode(), str(issued_ms).encode())
    )
    raw = hmac.new(key, msg + b"\x00" + digest, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_proof(
    key: bytes, purpose: str, name: str, audience: str, issued_ms: int, digest: bytes = b""
) -> str:
    mac = _mac(key, purpose, name, audience, issued_ms, digest)
    return f"{PROOF_PREFIX}/{purpose}/{audience}/{issued_ms}/{mac}"


def parse_proof(text: str) -> Proof | None:
    """The proof's fields when ``text`` has a proof's shape (not verified), else None."""
    m = _SHAPE.fullmatch(text)
    if m is None:
        return None
    return Proof(m.group(1), m.group(2), int(m.group(3)), m.group(4), text)


def proof_fresh(proof: Proof, now: float, max_age: float = PROOF_MAX_AGE_S) -> bool:
    age = now - proof.issued_ms / 1000.0
    return -CLOCK_SKEW_S <= age <= max_age


def verify_proof(key: bytes, proof: Proof, name: str, digest: bytes = b"") -> bool:
    """Is ``proof`` ``name``'s (made with its key, over this content)? Constant-time."""
    want = _mac(key, proof.purpose, name, proof.audience, proof.issued_ms, digest)
    return credential_equal(want, proof.mac)


def report_digest(states: Iterable[tuple[str, str, int, str, str, str]]) -> bytes:
    """What a report proof covers: every (object, host, port, state, endpoint, version)."""
    h = hashlib.sha256()
    for fields in states:
        h.update(b"\x00".join(str(f).encode() for f in fields) + b"\x01")
    return h.digest()
