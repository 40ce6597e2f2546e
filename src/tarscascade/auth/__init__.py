"""Credentials: node secrets, the proofs nodes send through relays, one constant-time check.

Pure (standard library only: ``hmac``, ``hashlib``, ``secrets``); every layer that checks
a credential calls :func:`credential_equal` (one home for the comparison).

* A **node secret** (``tcn1_`` + 256 random bits, base64url) is issued once by
  ``tarscascade node add NAME``; the registry keeps only its **node key**
  ``SHA-256("tarscascade node key v1" || secret)``. A node sends its secret only to a
  registry (over TLS when it is on), which hashes it and compares.
* A node behind a **relay** never sends its secret there: it sends a **proof**, an
  HMAC-SHA256 under its node key over (purpose, its name, the relay's name, the time),
  which the relay cannot forge for anyone else and passes up; the registry verifies it
  with the stored key. Reports through relays carry a proof over their content.
"""

from tarscascade.auth.identity import NodeIdentity
from tarscascade.auth.proofs import (
    CLOCK_SKEW_S,
    PROOF_MAX_AGE_S,
    PURPOSE_RELAYED,
    PURPOSE_REPORT,
    Proof,
    make_proof,
    parse_proof,
    proof_fresh,
    report_digest,
    verify_proof,
)
from tarscascade.auth.secrets import (
    NODE_SECRET_PREFIX,
    credential_equal,
    is_node_secret,
    new_node_secret,
    node_key,
    read_secret_file,
    secret_matches,
)

__all__ = [
    "CLOCK_SKEW_S",
    "NODE_SECRET_PREFIX",
    "PROOF_MAX_AGE_S",
    "PURPOSE_RELAYED",
    "PURPOSE_REPORT",
    "NodeIdentity",
    "Proof",
    "credential_equal",
    "is_node_secret",
    "make_proof",
    "new_node_secret",
    "node_key",
    "parse_proof",
    "proof_fresh",
    "read_secret_file",
    "report_digest",
    "secret_matches",
    "verify_proof",
]
