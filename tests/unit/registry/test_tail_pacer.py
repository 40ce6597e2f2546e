"""The tail's pace: fast while changes flow and a moment after, then backing off to the
idle poll, and to the deep-idle poll after a long quiet."""

from __future__ import annotations

from tarscascade.registry.core import TailPacer


def test_fast_while_changes_flow_and_a_moment_after() -> None:
    p = TailPacer(fast=0.02, idle=0.25, linger=1.0, deep_after=30.0, deep=1.0)
    assert p.delay == 0.25  # nothing known yet: idle
    p.found(1, now=100.0)
    assert p.delay == 0.02
    # writes 50 ms apart: the empty polls between them keep the fast pace (the first
    # version doubled after every empty poll, 20 -> 40 -> 80 ms, and lagged a steady stream)
    for k in range(1, 40):
        p.found(0, now=100.0 + k * 0.02)
        assert p.delay == 0.02
    p.found(0, now=101.5)  # quiet past the linger: back off by doubling
    assert p.delay == 0.04
    delays = []
    for k in range(8):
        p.found(0, now=102.0 + k)
        delays.append(p.delay)
    assert delays == [0.08, 0.16, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]
    p.found(0, now=131.0)  # a long quiet: deep idle
    assert p.delay == 1.0
    p.found(3, now=140.0)  # a change: fast at once
    assert p.delay == 0.02


def test_deep_is_never_shorter_than_idle() -> None:
    p = TailPacer(fast=0.02, idle=2.0, linger=1.0, deep_after=30.0, deep=1.0)
    p.found(0, now=1000.0)
    assert p.delay == 2.0
