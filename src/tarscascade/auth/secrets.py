"""Node secrets and the one credential comparison.

Why SHA-256 and not a slow KDF (or a server-side pepper): a node secret is 256 bits from
``secrets.token_urlsafe``, never chosen by a person, so nothing can be guessed offline
from its hash (slow KDFs exist to protect low-entropy passwords), while the registry
verifies a secret on every subscribe and every report: a KDF at ~50 ms a check would cost
a reconnect storm of 10,000 nodes minutes of CPU. The domain prefix keeps the node key
distinct from any other use of the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

NODE_SECRET_PREFIX = "tcn1_"
_SECRET_BYTES = 32
_KEY_DOMAIN = b"tarscascade node key v1\x00"
#: bounds on what a secret file / a presented credential may be (no megabyte tokens)
MAX_CREDENTIAL_LEN = 512


def credential_equal(given: str | bytes, expected: str | bytes) -> bool:
    """The one credential comparison: constant-time in the content (``hmac.compare_digest``)."""
    g = given.encode() if isinstance(given, str) else given
    e = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(g, e)


def new_node_secret() -> str:
    return NODE_SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def is_node_secret(text: str) -> bool:
    """A per-node secret (as issued), as opposed to a shared bootstrap token."""
    return text.startswith(NODE_SECRET_PREFIX) and len(text) <= MAX_CREDENTIAL_LEN


def node_key(secret: str) -> bytes:
    """What the registry stores for a node (32 bytes); also the node's HMAC key for proofs."""
    return hashlib.sha256(_KEY_DOMAIN + secret.encode()).digest()


def secret_matches(given: str, key: bytes) -> bool:
    """Does ``given`` hash to the stored ``key``? (Constant-time.)"""
    if not given or len(given) > MAX_CREDENTIAL_LEN:
        return False
    return credential_equal(node_key(given), key)


def read_secret_file(path: str | Path) -> str:
    """The credential in a file: its first line, stripped. Raises ValueError (never
    echoing the content) when the file is empty, unreadable or implausibly long."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the credential file {str(p)!r}: {exc}") from None
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    if not first:
        raise ValueError(f"the credential file {str(p)!r} is empty")
    if len(first) > MAX_CREDENTIAL_LEN:
        raise ValueError(f"the credential file {str(p)!r} does not hold a credential")
    return first
