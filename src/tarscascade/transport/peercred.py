"""Who is on the other end of a loopback TCP connection (Linux: the owning uid).

Per-peer budgets keyed by IP put every local process in one pool (they are all
127.0.0.1); on Linux the client socket of a loopback connection is listed in
``/proc/net/tcp{,6}`` with its owner's uid, so local users get a pool each. Elsewhere,
or when the entry is not found, the key is the IP.
"""

from __future__ import annotations

from pathlib import Path

from tarscascade.wire.hosts import is_loopback

_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_ESTABLISHED = "01"


def loopback_peer_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the client end (``peer``) of our loopback connection at ``local``."""
    want_local, want_remote = f"{peer[1]:04X}", f"{local[1]:04X}"
    for table in _TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 8 or f[3] != _ESTABLISHED:
                continue
            if f[1].rpartition(":")[2] == want_local and f[2].rpartition(":")[2] == want_remote:
                try:
                    return int(f[7])
                except ValueError:
                    return None
    return None


def peer_key(peer: tuple[str, int], local: tuple[str, int]) -> str:
    """A budget key for this peer: ``uid:N`` for a local process (Linux), else its IP."""
    if is_loopback(peer[0]):
        uid = loopback_peer_uid(peer, local)
        if uid is not None:
            return f"uid:{uid}"
    return peer[0]
