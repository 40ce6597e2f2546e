"""The SQLite WAL switch waits out a concurrent first open, and only that."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tarscascade.store import engine


class ScriptedCursor:
    """Answers ``execute`` with the scripted errors, then succeeds."""

    def __init__(self, errors: list[sqlite3.OperationalError]) -> None:
        self.errors = errors
        self.calls = 0

    def execute(self, sql: str) -> None:
        assert sql == "PRAGMA journal_mode = WAL"
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def busy() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database is locked")
    exc.sqlite_errorcode = sqlite3.SQLITE_BUSY
    return exc


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(engine.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(engine.time, "sleep", fake.sleep)
    return fake


def switch(cursor: ScriptedCursor, timeout_s: float) -> None:
    cursor_any: Any = cursor
    engine._switch_to_wal(cursor_any, timeout_s)


def test_a_busy_switch_is_retried_until_it_succeeds(clock: FakeClock) -> None:
    cursor = ScriptedCursor([busy(), busy(), busy()])
    switch(cursor, timeout_s=30)
    assert cursor.calls == 4
    assert clock.slept == [0.001, 0.002, 0.004]  # backing off, not spinning


def test_the_pause_is_capped(clock: FakeClock) -> None:
    switch(ScriptedCursor([busy() for _ in range(12)]), timeout_s=30)
    assert max(clock.slept) == engine._WAL_RETRY_MAX_S


def test_a_switch_busy_for_longer_than_the_timeout_fails(clock: FakeClock) -> None:
    cursor = ScriptedCursor([busy() for _ in range(10_000)])
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        switch(cursor, timeout_s=1.0)
    assert clock.now <= 1.0
    assert 1 < cursor.calls < 100


def test_any_other_error_is_raised_at_once(clock: FakeClock) -> None:
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = sqlite3.SQLITE_IOERR
    cursor = ScriptedCursor([exc])
    with pytest.raises(sqlite3.OperationalError, match="I/O"):
        switch(cursor, timeout_s=30)
    assert cursor.calls == 1
    assert clock.slept == []
