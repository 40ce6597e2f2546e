"""Periodic jobs with a time budget: a slow round pushes the next one further away."""

from __future__ import annotations

import pytest

from tarscascade.registry.core import paced_wait


@pytest.mark.parametrize(
    ("interval", "took", "budget", "want"),
    [
        (60.0, 0.1, 0.01, 60.0),  # cheap: the interval
        (60.0, 1.2, 0.01, 120.0),  # 100,000 endpoints: 1 % of the time
        (60.0, 12.0, 0.01, 1200.0),  # 1,000,000
        (60.0, 12.0, 0.0, 60.0),  # no budget: the interval alone
        (0.5, 0.0, 0.01, 0.5),
    ],
)
def test_a_round_takes_at_most_its_budget(
    interval: float, took: float, budget: float, want: float
) -> None:
    wait = paced_wait(interval, took, budget)
    assert wait == pytest.approx(want)
    if budget:
        assert took / (took + wait) <= budget + 1e-9
