"""Per-endpoint fault shielding with TarsCpp's rules (tars-protocol.md §4.4), pure.

An endpoint is *blocked* (shielded: not picked by the balancer) when any of:

1. **consecutive failures**: ``frequence_fail_invoke`` failures in a row, the first of
   them at least ``min_frequence_fail_time`` seconds ago (immediately when
   ``frequence_fail_invoke`` is 1);
2. **failure ratio**: when a call ends a ``check_timeout_interval`` window, that call
   failed, the window holds at least ``min_timeout_invoke`` failures, and failures are at
   least ``fail_ratio`` of the window's calls; a window that ends otherwise starts afresh;
3. **connect failures**: ``max_connect_exc`` connect failures in a row (counted apart:
   a call that could not connect is not a failed call, as in TarsCpp ``addConnExc``).

A blocked endpoint may be tried again every ``try_time_interval`` seconds (:meth:`allow`
grants one try and schedules the next); one success restores it.

Defaults are TarsCpp 3.0.x's (``CheckTimeoutInfo`` in ``servant/Message.h``), named once
below. Time comes from an injected ``monotonic()`` callable, so tests use a fake clock.
What counts as a failure is the caller's decision; the proxy follows TarsCpp
(``finishInvoke(iRet != TARSSERVERSUCCESS)``): a call timeout, a lost connection, or any
non-zero framework return code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

#: window length, seconds (``checkTimeoutInterval``)
CHECK_TIMEOUT_INTERVAL = 5.0
#: failures a window needs before the ratio rule applies (``minTimeoutInvoke``)
MIN_TIMEOUT_INVOKE = 2
#: failed share of a window's calls that blocks (``radio``)
FAIL_RATIO = 0.3
#: consecutive failures that block (``frequenceFailInvoke``)
FREQUENCE_FAIL_INVOKE = 3
#: ... once the run of failures has lasted this long, seconds (``minFrequenceFailTime``)
MIN_FREQUENCE_FAIL_TIME = 2.0
#: a blocked endpoint is retried this often, seconds (``tryTimeInterval``)
TRY_TIME_INTERVAL = 10.0
#: consecutive connect failures that block (``maxConnectExc``)
MAX_CONNECT_EXC = 1

Clock = Callable[[], float]
K = TypeVar("K", bound=Hashable)


class Outcome(Enum):
    SUCCESS = "success"
    #: the call was sent but failed: timeout, connection lost, non-zero iRet
    FAILURE = "failure"
    #: the connection could not be made (rule 3 only)
    CONNECT_FAILURE = "connect_failure"


class Reason(Enum):
    CONSECUTIVE = "consecutive failures"
    RATIO = "failure ratio"
    CONNECT = "connect failures"


@dataclass(frozen=True, slots=True)
class ShieldOptions:
    check_timeout_interval: float = CHECK_TIMEOUT_INTERVAL
    min_timeout_invoke: int = MIN_TIMEOUT_INVOKE
    fail_ratio: float = FAIL_RATIO
    frequence_fail_invoke: int = FREQUENCE_FAIL_INVOKE
    min_frequence_fail_time: float = MIN_FREQUENCE_FAIL_TIME
    try_time_interval: float = TRY_TIME_INTERVAL
    max_connect_exc: int = MAX_CONNECT_EXC

    def __post_init__(self) -> None:
        if self.check_timeout_interval <= 0 or self.try_time_interval < 0:
            raise ValueError("shield intervals must be positive")
        if self.min_frequence_fail_time < 0:
            raise ValueError("min_frequence_fail_time must not be negative")
        if min(self.min_timeout_invoke, self.frequence_fail_invoke, self.max_connect_exc) < 1:
            raise ValueError("shield thresholds must be at least 1")
        if not 0.0 <= self.fail_ratio <= 1.0:
            raise ValueError(f"fail_ratio {self.fail_ratio} outside 0..1")


@dataclass(slots=True)
class EndpointHealth:
    """Counters of one endpoint (mutable; owned by the :class:`Shield`)."""

    window_end: float
    window_calls: int = 0
    window_failures: int = 0
    consecutive: int = 0
    first_failure_at: float = 0.0
    connect_failures: int = 0
    blocked: Reason | None = None
    next_try: float = 0.0
    blocks: int = 0  # how many times this endpoint was blocked (statistics)


class Shield(Generic[K]):
    """Health of endpoints keyed by ``K`` (the proxy uses ``(transport, host, port)``)."""

    def __init__(self, options: ShieldOptions | None = None, clock: Clock = time.monotonic):
        self.options = options or ShieldOptions()
        self.clock = clock
        self._health: dict[K, EndpointHealth] = {}

    def _get(self, key: K, now: float) -> EndpointHealth:
        h = self._health.get(key)
        if h is None:
            h = self._health[key] = EndpointHealth(now + self.options.check_timeout_interval)
        return h

    # -- queries (used by the balancer)
    def allow(self, key: K) -> bool:
        """May ``key`` be used now? A blocked endpoint whose retry is due is granted one
        try (the next one is scheduled ``try_time_interval`` later)."""
        h = self._health.get(key)
        if h is None or h.blocked is None:
            return True
        now = self.clock()
        if now >= h.next_try:
            h.next_try = now + self.options.try_time_interval
            return True
        return False

    def is_blocked(self, key: K) -> bool:
        h = self._health.get(key)
        return h is not None and h.blocked is not None

    def connect_failed(self, key: K) -> bool:
        """True when the last attempt to connect to ``key`` failed."""
        h = self._health.get(key)
        return h is not None and h.connect_failures > 0

    def reason(self, key: K) -> Reason | None:
        h = self._health.get(key)
        return None if h is None else h.blocked

    def health(self, key: K) -> EndpointHealth | None:
        return self._health.get(key)

    @property
    def blocked(self) -> list[K]:
        return [k for k, h in self._health.items() if h.blocked is not None]

    # -- outcomes
    def record(self, key: K, outcome: Outcome) -> None:
        """Account one finished call (or failed connect) to ``key``."""
        now = self.clock()
        opts = self.options
        h = self._get(key, now)
        if outcome is Outcome.CONNECT_FAILURE:
            # TarsCpp addConnExc: its own counter; the call itself is not counted
            h.connect_failures += 1
            if h.blocked is None and h.connect_failures >= opts.max_connect_exc:
                self._block(h, Reason.CONNECT, now)
            return
        h.connect_failures = 0  # a call was sent: the connection works
        failed = outcome is Outcome.FAILURE
        if h.blocked is not None:
            # a try of a blocked endpoint: one success restores it, a failure keeps it out
            if not failed:
                self._restore(h, now)
            return
        h.window_calls += 1
        if failed:
            if h.consecutive == 0:
                h.first_failure_at = now
            h.consecutive += 1
            h.window_failures += 1
            if h.consecutive >= opts.frequence_fail_invoke and (
                opts.frequence_fail_invoke == 1
                or now - h.first_failure_at >= opts.min_frequence_fail_time
            ):
                self._block(h, Reason.CONSECUTIVE, now)
                return
        else:
            h.consecutive = 0
        if now >= h.window_end:
            h.window_end = now + opts.check_timeout_interval
            if (
                failed
                and h.window_failures >= opts.min_timeout_invoke
                and h.window_failures >= opts.fail_ratio * h.window_calls
            ):
                self._block(h, Reason.RATIO, now)
                return
            h.window_calls = h.window_failures = 0

    def _block(self, h: EndpointHealth, reason: Reason, now: float) -> None:
        h.blocked = reason
        h.blocks += 1
        h.next_try = now + self.options.try_time_interval
        h.window_calls = h.window_failures = h.consecutive = 0

    def _restore(self, h: EndpointHealth, now: float) -> None:
        h.blocked = None
        h.window_calls = 1  # the successful try (TarsCpp: _totalInvoke = 1)
        h.window_failures = h.consecutive = 0
        h.window_end = now + self.options.check_timeout_interval

    def retain(self, keys: Iterable[K]) -> None:
        """Forget endpoints not in ``keys`` (they left the endpoint list)."""
        keep = set(keys)
        for k in [k for k in self._health if k not in keep]:
            del self._health[k]

    def __len__(self) -> int:
        return len(self._health)

    def __repr__(self) -> str:
        return f"<Shield endpoints={len(self._health)} blocked={len(self.blocked)}>"
