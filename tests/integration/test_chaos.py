"""Chaos in the suite: real processes, fault proxies, kills; zero lost, resurrected,
time-travel or empty (the engine and the checks are in bench/bench_chaos.py; the longer
soak is ``python -m bench --only chaos``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.bench_chaos import chaos_run


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_chaos(tmp_path: Path) -> None:
    report = await chaos_run(35.0, seed=7, workdir=tmp_path)
    print(report)
    assert report["lost"] == []
    assert report["resurrected"] == 0
    assert report["time_travel"] == 0
    assert report["empty"] == 0
    assert report["writes"]["acked"] > 30
    assert sum(report["faults"].values()) >= 5
    assert report["lookups"] > 100
