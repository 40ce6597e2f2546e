"""Listen safety: what may listen beyond loopback, for HTTP and TARS ports alike."""

from __future__ import annotations

from tarscascade.errors import TarsCascadeError
from tarscascade.wire.hosts import is_loopback


class UnsafeListenError(TarsCascadeError, ValueError):
    """Refusing to serve writes on a non-loopback address without an admin token."""


def check_listen_safety(host: str, token: str | None) -> None:
    """Raise :class:`UnsafeListenError` when ``host`` is reachable from outside and no token
    protects the writes (the runtime calls this before binding the admin port)."""
    if not token and not is_loopback(host):
        raise UnsafeListenError(
            f"refusing to serve the admin API on {host!r} without an admin token: "
            "anyone who can reach it could change the registry; set a token or listen "
            "on 127.0.0.1"
        )


def check_tars_listen_safety(
    host: str, what: str, *, credentials: bool, tls: bool, insecure: bool
) -> None:
    """The same rule for a TARS port (ReportObj and CascadeObj take writes and claims):
    beyond loopback, refuse to start without credentials or TLS unless ``insecure``."""
    if is_loopback(host) or credentials or tls or insecure:
        return
    raise UnsafeListenError(
        f"refusing to serve {what} on {host!r} without credentials or TLS: anyone who can "
        "reach it could report for any node or claim any node; issue node credentials "
        "(tarscascade node add), set a token, turn on TLS, or pass --insecure"
    )
