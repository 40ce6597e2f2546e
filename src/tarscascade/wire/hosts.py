"""What a host string is: loopback, a wildcard; how ``HOST:PORT`` splits (one home for
these rules)."""

from __future__ import annotations

import ipaddress

WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals; any other name might not be."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """A bind address meaning every interface (not an address anyone can dial)."""
    return host.strip().strip("[]") in WILDCARDS


def split_host_port(text: str) -> tuple[str, str]:
    """``HOST:PORT``, ``[v6]:PORT``, ``HOST``, ``[v6]`` or ``:PORT`` -> (host, port text);
    a bare IPv6 address (more than one ``:``) is all host."""
    t = text.strip()
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        return host, rest.lstrip(":")
    if t.count(":") == 1:
        host, port = t.split(":")
        return host, port
    return t, ""
