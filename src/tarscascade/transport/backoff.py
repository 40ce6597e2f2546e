"""Exponential backoff with jitter, pure (the caller sleeps)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays grow ``initial * multiplier**n`` up to ``maximum``; each is jittered.

    Jitter spreads reconnects of many clients after a shared failure (a registry restart)
    so they do not arrive in lock step.
    """

    initial: float = 0.1
    maximum: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.5  # fraction of the delay drawn at random: delay * (1 - jitter*U[0,1))
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * self.multiplier**self._attempt)
        self._attempt = min(self._attempt + 1, 64)
        return base * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempts(self) -> int:
        return self._attempt
