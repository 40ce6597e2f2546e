"""Which endpoints a node may announce (the SDK's keepAlive context): one rule, applied by
the node when it takes the keepAlive and by the registry again when it takes the report.

* The endpoint's host must be one of the node's own hosts (its advertised address, its
  node record's address, or the hosts an admin pinned for it).
* A loopback host registers nothing useful fleet-wide: it is refused unless loopback is
  allowed (a node or registry that itself serves only on loopback, as ``tarscascade up``).
* The object must already have an endpoint registered for that node (TARS needs a
  ``t_server_conf`` row before a server runs; ``endpoint add --node`` is that row here),
  or match the node's allow-list: setting ``tarscascade.announce:<node>``, a comma-separated
  list of object ids where ``*`` matches anything (``App.*``, ``Pay.Core.PayObj``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

from tarscascade.catalog.catalog import Catalog
from tarscascade.wire.hosts import is_loopback

ANNOUNCE_SETTING_PREFIX = "tarscascade.announce:"


def announce_setting(node: str) -> str:
    """The setting holding ``node``'s allow-list of object patterns."""
    return ANNOUNCE_SETTING_PREFIX + node


@lru_cache(maxsize=1024)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(p) for p in text.split("*")))


def allowed_patterns(catalog: Catalog, node: str) -> list[str]:
    value = catalog.get_setting(announce_setting(node)) or ""
    return [p.strip() for p in value.split(",") if p.strip()]


def object_allowed(catalog: Catalog, node: str, object_id: str) -> bool:
    if any(r.node_name == node for r in catalog.endpoints_unordered(object_id)):
        return True
    return any(_pattern(p).fullmatch(object_id) for p in allowed_patterns(catalog, node))


def announce_refusal(
    catalog: Catalog,
    node: str,
    object_id: str,
    host: str,
    own_hosts: Collection[str],
    *,
    allow_loopback: bool,
) -> str | None:
    """Why ``node`` may not announce ``object_id`` on ``host`` (None: it may)."""
    if is_loopback(host) and not allow_loopback:
        return f"loopback host {host} (serves nothing beyond its own host)"
    if host not in own_hosts:
        mine = ", ".join(sorted(own_hosts)) or "none known"
        return f"host {host} is not one of node {node}'s addresses ({mine})"
    if not object_allowed(catalog, node, object_id):
        return (
            f"object {object_id} is not registered for node {node} (add one endpoint with"
            f" --node {node}, or allow it in setting {announce_setting(node)})"
        )
    return None
