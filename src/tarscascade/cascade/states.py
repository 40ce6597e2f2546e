"""Held-version lists on the wire, validated: what a downstream says it holds.

Both sides use these: the client builds ``CategoryStateF`` lists from its catalog, the
hub parses them from requests and refuses anything malformed (``BAD_REQUEST``) before
it changes any state. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tarscascade.catalog import Catalog
from tarscascade.catalog.digests import Scheme
from tarscascade.errors import TarsCascadeError
from tarscascade.model import Category, Version, is_node_name
from tarscascade.wire.idl.cascadef import (
    CategoryStateF,
    NodeAckF,
    VersionF,
    from_wire_digest,
    from_wire_digest128,
    to_wire_digest,
    to_wire_digest128,
)

_EPOCH = re.compile(r"[\x21-\x7e]{0,64}")
_HOST = re.compile(r"[A-Za-z0-9_.:\-\[\]%]{1,255}")
MAX_REVISION = 2**63 - 1


class BadRequestError(TarsCascadeError, ValueError):
    """A cascade request with malformed fields; answered with BAD_REQUEST, nothing changes."""


@dataclass(frozen=True, slots=True)
class Held:
    """What a downstream holds of one category: its version and that version's digest,
    in the scheme the upstream compares with (None: no comparable digest)."""

    version: Version
    digest: int | None


def check_name(name: object) -> str:
    """The node name of a request (the one rule of ``model.is_node_name``)."""
    if not isinstance(name, str) or not is_node_name(name):
        raise BadRequestError(f"bad node name {name!r:.80}")
    return name


_CATEGORIES = {str(c): c for c in Category}
#: epochs already found well-formed (every ack and heartbeat carries the same few)
_GOOD_EPOCHS: set[str] = set()


def parse_held(
    states: Sequence[CategoryStateF], scheme: Scheme | None = None
) -> dict[Category, Held]:
    """``{category: Held}`` from a request; raises BadRequestError on anything odd.

    The digest kept is the one ``scheme`` compares: the 128-bit one (V2), the legacy
    one (LEGACY) or none (NONE); None: whichever was said (for display: the 128-bit
    one if given, else the legacy one).
    """
    if len(states) > len(Category):
        raise BadRequestError(f"{len(states)} category states, at most {len(Category)}")
    out: dict[Category, Held] = {}
    for st in states:
        cat = _CATEGORIES.get(st.category)
        if cat is None:
            raise BadRequestError(f"unknown category {st.category!r:.40}")
        if cat in out:
            raise BadRequestError(f"category {cat} given twice")
        v = st.version
        if v.epoch not in _GOOD_EPOCHS:
            if _EPOCH.fullmatch(v.epoch) is None:
                raise BadRequestError(f"bad epoch {v.epoch!r:.80}")
            if len(_GOOD_EPOCHS) > 1024:
                _GOOD_EPOCHS.clear()
            _GOOD_EPOCHS.add(v.epoch)
        if not 0 <= v.revision <= MAX_REVISION or (not v.epoch and v.revision):
            raise BadRequestError(f"bad revision {v.revision} for {cat}")
        try:
            d128 = from_wire_digest128(st.digest128)
        except ValueError as exc:
            raise BadRequestError(f"{cat}: {exc}") from None
        digest: int | None
        if scheme is Scheme.V2:
            digest = d128
        elif scheme is Scheme.LEGACY:
            digest = from_wire_digest(st.digest)
        elif scheme is Scheme.NONE:
            digest = None
        else:
            digest = d128 if d128 is not None else from_wire_digest(st.digest)
        out[cat] = Held(Version(v.epoch, v.revision), digest)
    return out


def parse_counts(states: Sequence[CategoryStateF]) -> dict[Category, int]:
    """Records held per category, where the downstream said (call after parse_held)."""
    out = {}
    for st in states:
        if st.count >= 0:
            out[Category(st.category)] = st.count
    return out


def parse_floor(states: Sequence[CategoryStateF]) -> dict[Category, Version]:
    """A relay's ack floor: per category, a version all its descendants hold (an empty
    version: not every one holds that category)."""
    return {cat: h.version for cat, h in parse_held(states).items()}


def parse_descendant_addresses(acks: Sequence[NodeAckF]) -> dict[str, str]:
    """The addresses a relay gave for its descendants (validated; bad ones dropped)."""
    out = {}
    for ack in acks:
        if ack.address:
            try:
                parse_address(ack.address, "")
            except BadRequestError:
                continue
            out[ack.nodeName] = ack.address
    return out


def parse_address(address: str, peer_host: str) -> tuple[str, int]:
    """``host:port`` (empty: the peer's address, port 0); BadRequestError otherwise."""
    if not address:
        return peer_host, 0
    host, sep, port = address.rpartition(":")
    if not sep or _HOST.fullmatch(host) is None or not port.isdigit() or len(port) > 5:
        raise BadRequestError(f"bad address {address!r:.80} (want host:port)")
    if not 0 < int(port) < 65536:
        raise BadRequestError(f"bad port in address {address!r:.80}")
    return host, int(port)


def parse_descendants(acks: Sequence[NodeAckF], limit: int) -> dict[str, dict[Category, Held]]:
    if len(acks) > limit:
        raise BadRequestError(f"{len(acks)} descendants, at most {limit}")
    out: dict[str, dict[Category, Held]] = {}
    for ack in acks:
        out[check_name(ack.nodeName)] = parse_held(ack.held)
    return out


#: the catalog's count that tells how many records a category holds
COUNT_KEYS = {
    Category.OBJECTS: "endpoints",
    Category.NODES: "nodes",
    Category.GROUPS: "groups",
    Category.SETTINGS: "settings",
}


def held_states(catalog: Catalog) -> list[CategoryStateF]:
    """What a catalog holds, as sent in subscribe/heartbeat/ack (empty epoch: nothing):
    the 128-bit digest always, the legacy one where the catalog keeps it (else 0)."""
    out = []
    counts = catalog.counts()
    legacy = catalog.legacy_enabled
    for cat in Category:
        v = catalog.version(cat)
        out.append(
            CategoryStateF(
                category=str(cat),
                version=VersionF(epoch=v.epoch, revision=v.revision),
                digest=to_wire_digest(catalog.legacy_digest(cat)) if legacy else 0,
                count=counts[COUNT_KEYS[cat]],
                digest128=to_wire_digest128(catalog.digest(cat)),
            )
        )
    return out


def floor_states(floor: dict[Category, Version]) -> list[CategoryStateF]:
    return [
        CategoryStateF(category=str(c), version=VersionF(epoch=v.epoch, revision=v.revision))
        for c, v in floor.items()
    ]


def states_of(held: dict[Category, Held]) -> list[CategoryStateF]:
    """Held states to pass on (a relay's descendants; their digests are for display)."""
    return [
        CategoryStateF(
            category=str(cat),
            version=VersionF(epoch=h.version.epoch, revision=h.version.revision),
            digest128=b"" if h.digest is None else to_wire_digest128(h.digest % 2**128),
        )
        for cat, h in held.items()
    ]


def is_at_least(held: Version | None, version: Version) -> bool:
    """Whether a downstream at ``held`` has everything up to ``version`` (same lineage)."""
    return held is not None and held.epoch == version.epoch and held.revision >= version.revision
