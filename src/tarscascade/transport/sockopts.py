"""TCP keepalive and user timeout on every socket, so dead peers are found by the kernel.

A peer that lost power or sits behind a partition sends neither FIN nor RST: without
keepalive a connection to it lives for ever, and without ``TCP_USER_TIMEOUT`` data
written to it is retransmitted for about 15 minutes before the kernel gives up. With
both, an idle dead peer is found after ``idle + interval * count`` seconds and a busy
one after ``user_timeout``. Options missing on a platform are skipped.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """The defaults find a dead peer within 11 s: soon enough that a connection the
    kernel keeps open can vouch for its peer's host inside a 30 s node timeout, also
    through a tier's shared sightings (the registry's liveness of idle nodes,
    docs/protocol.md *Idle heartbeats*). The probes are the kernel's: an idle
    connection costs no process a wake-up."""

    idle: int = 5  # seconds of silence before the first probe
    interval: int = 2  # seconds between probes
    count: int = 3  # unanswered probes before the connection is dropped
    #: unacknowledged written data older than this drops the connection (seconds)
    user_timeout: float = 11.0

    @property
    def detection_bound(self) -> float:
        """Seconds within which a dead peer's connection is dropped, idle or busy: a
        connection still open proves the peer's host answered within this."""
        return max(self.idle + self.interval * self.count, self.user_timeout)


DEFAULT_KEEPALIVE = KeepAlive()


def apply_keepalive(sock: socket.socket | None, ka: KeepAlive | None = DEFAULT_KEEPALIVE) -> None:
    """Turn keepalive (and the user timeout) on for a connected TCP socket."""
    if sock is None or ka is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", ka.idle),
            ("TCP_KEEPINTVL", ka.interval),
            ("TCP_KEEPCNT", ka.count),
            ("TCP_USER_TIMEOUT", int(ka.user_timeout * 1000)),
        ):
            opt = getattr(socket, name, None)
            if opt is not None:
                sock.setsockopt(socket.IPPROTO_TCP, opt, value)
