"""How current an upstream's data is, as it travels down the tree. Pure.

Like Consul's ``X-Consul-LastContact``/``KnownLeader``: every subscribe and heartbeat
answer carries the upstream's own freshness, and a downstream derives its own from it.
A registry is the source: fresh unless its store cannot be read. A relay is as fresh as
its own upstream was when it last heard from it, plus the time since; a relay cut off
from its upstream, behind it, or serving a copy loaded from disk that no upstream has
confirmed yet says so, and its downstreams inherit that.
"""

from __future__ import annotations

from dataclasses import dataclass

from tarscascade.wire.idl.cascadef import FreshnessF

#: contact ages are carried in whole milliseconds, capped (a day) so they always fit
MAX_CONTACT_AGE_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Freshness:
    #: the data may be out of date: cut off from the source, behind it, or unconfirmed
    stale: bool = False
    #: seconds since this data was last known current at the source (0 at the source)
    contact_age: float = 0.0
    #: served from a copy loaded from disk that no upstream has confirmed since
    from_disk: bool = False
    #: the lineage (epoch) the source says an operator confirmed ("" none)
    confirmed_epoch: str = ""

    def to_wire(self) -> FreshnessF:
        ms = min(MAX_CONTACT_AGE_MS, max(0, round(self.contact_age * 1000)))
        return FreshnessF(self.stale, ms, self.from_disk, self.confirmed_epoch)

    @staticmethod
    def from_wire(f: FreshnessF) -> Freshness:
        age = min(MAX_CONTACT_AGE_MS, max(0, f.contactAgeMs)) / 1000.0
        return Freshness(bool(f.stale), age, bool(f.fromDisk), f.confirmedEpoch[:64])


#: what a source with nothing wrong says about itself
FRESH = Freshness()
