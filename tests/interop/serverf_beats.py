"""The ``ServerF`` calls stock TARS servers make to their node, as timed schedules.

Restated from the public sources (README, "Compatibility"; nothing here is copied):

* **TarsCpp 3.0.x** (``Application::main``, ``ServantHandle::heartbeat``,
  ``KeepAliveNodeFHelper``): ``keepActiving`` every 5 s while ``initialize()`` runs
  (at least once), then ``reportVersion`` and ``keepAlive`` with adapter ``""``. Each
  adapter's handle beats when more than ``HEART_BEAT_INTERVAL`` (10 s, whole seconds) has
  passed, so about every 11 s; the helper collects the adapter names and sends one
  ``keepAlive`` per collected name (in ``std::set`` order) only when the
  ``AdminAdapter`` beat comes. The capture in issue 11: ``AdminAdapter`` alone at
  +1.001 s, then ``AdminAdapter`` and ``Test.HelloServer.HelloObjAdapter`` at +12.003 s
  and every ~11 s after.
* **TarsGo** (``application.mainLoop``, ``NodeFHelper``): ``ReportVersion`` and
  ``KeepAlive("")`` at start (two goroutines, either order), then every
  ``mainloopticker`` (10 s) one ``KeepAlive(name)`` per configured adapter, including
  ``AdminAdapter`` when ``local`` is set, in Go's random map order. No ``keepActiving``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TARSCPP_VERSION = "3.0.22"
TARSGO_VERSION = "1.4.5"
#: TarsCpp ``HEART_BEAT_INTERVAL`` is 10 s compared with ">" on whole seconds: ~11 s
TARSCPP_BEAT = 11.0
TARSCPP_FIRST_ADMIN = 1.001
TARSCPP_FIRST_ALL = 12.003
TARSCPP_ACTIVATING_EVERY = 5.0
TARSGO_TICK = 10.0


@dataclass(frozen=True, slots=True)
class Call:
    at: float
    app: str
    server: str
    func: str  # keepAlive | keepActiving | reportVersion
    adapter: str = ""
    version: str = ""


def tarscpp(
    app: str, server: str, adapters: list[str], until: float, *, init: float = 0.0
) -> list[Call]:
    """A TarsCpp server whose ``initialize()`` takes ``init`` s, beating until ``until``."""
    out = [
        Call(t, app, server, "keepActiving") for t in _steps(0.0, init, TARSCPP_ACTIVATING_EVERY)
    ]
    if not out:
        out.append(Call(0.0, app, server, "keepActiving"))
    out.append(Call(init, app, server, "reportVersion", version=TARSCPP_VERSION))
    out.append(Call(init, app, server, "keepAlive", ""))
    out.append(Call(init + TARSCPP_FIRST_ADMIN, app, server, "keepAlive", "AdminAdapter"))
    t = init + TARSCPP_FIRST_ALL
    while t < until:
        for name in sorted(["AdminAdapter", *adapters]):
            out.append(Call(t, app, server, "keepAlive", name))
        t += TARSCPP_BEAT
    return [c for c in out if c.at < until]


def tarsgo(
    app: str, server: str, adapters: list[str], until: float, *, seed: int = 0
) -> list[Call]:
    """A TarsGo server with ``adapters`` (+ ``AdminAdapter``), beating until ``until``."""
    rng = random.Random(seed)
    first = [
        Call(0.0, app, server, "reportVersion", version=TARSGO_VERSION),
        Call(0.0, app, server, "keepAlive", ""),
    ]
    rng.shuffle(first)
    out = first
    t = TARSGO_TICK
    while t < until:
        names = ["AdminAdapter", *adapters]
        rng.shuffle(names)
        out += [Call(t, app, server, "keepAlive", n) for n in names]
        t += TARSGO_TICK
    return out


def merged(*schedules: list[Call]) -> list[Call]:
    return sorted((c for s in schedules for c in s), key=lambda c: c.at)


def last_beat(schedule: list[Call], app: str, server: str) -> float:
    return max(c.at for c in schedule if (c.app, c.server, c.func) == (app, server, "keepAlive"))


def _steps(start: float, stop: float, every: float) -> list[float]:
    out, t = [], start
    while t < stop:
        out.append(t)
        t += every
    return out
