"""CI runs property tests derandomized and without the example database (tests/conftest.py)."""

from __future__ import annotations

import pytest
from hypothesis import settings

from tests.conftest import _hypothesis_profile


@pytest.mark.parametrize(("env", "profile"), [({"CI": "true"}, "ci"), ({}, "dev")])
def test_profile_follows_ci(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], profile: str
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert _hypothesis_profile() == profile


def test_ci_profile_is_derandomized_and_database_free() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize
    assert ci.database is None
