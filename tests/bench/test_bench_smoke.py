"""Every benchmark's --quick mode runs and writes well-formed results (not a timing test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.__main__ import SUITE  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SUITE))
def test_quick_benchmark_writes_results(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    latest = ROOT / "bench" / "results" / f"{name}-quick-latest.json"
    doc = json.loads(latest.read_text())
    assert doc["benchmark"] == name
    assert doc["quick"] is True
    assert doc["machine"]["cpus"] >= 1
    assert doc["machine"]["python"]
    assert doc["results"], "no figures recorded"


def test_report_reads_every_saved_quick_result() -> None:
    """The README table's generator understands every benchmark's saved results."""
    from bench.report import table

    text = table(quick=True)
    assert text.startswith("Measured ")
    assert "unreadable results" not in text, text
    assert "| benchmark | figure | target |" in text
