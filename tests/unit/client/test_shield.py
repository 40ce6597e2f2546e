"""Fault shielding: every rule of tars-protocol.md §4.4, both directions, on a fake clock."""

from __future__ import annotations

import pytest

from tarscascade.client.shield import (
    CHECK_TIMEOUT_INTERVAL,
    FAIL_RATIO,
    FREQUENCE_FAIL_INVOKE,
    MAX_CONNECT_EXC,
    MIN_FREQUENCE_FAIL_TIME,
    MIN_TIMEOUT_INVOKE,
    TRY_TIME_INTERVAL,
    Outcome,
    Reason,
    Shield,
    ShieldOptions,
)

OK, FAIL, REFUSED = Outcome.SUCCESS, Outcome.FAILURE, Outcome.CONNECT_FAILURE
A = "a"


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(**opts: object) -> tuple[Shield[str], FakeClock]:
    clock = FakeClock()
    return Shield(ShieldOptions(**opts), clock), clock  # type: ignore[arg-type]


def test_defaults_are_tarscpp_3_0_x() -> None:
    assert (CHECK_TIMEOUT_INTERVAL, MIN_TIMEOUT_INVOKE, FAIL_RATIO) == (5.0, 2, 0.3)
    assert (FREQUENCE_FAIL_INVOKE, MIN_FREQUENCE_FAIL_TIME) == (3, 2.0)
    assert (TRY_TIME_INTERVAL, MAX_CONNECT_EXC) == (10.0, 1)
    o = ShieldOptions()
    assert o.check_timeout_interval == 5.0
    assert o.try_time_interval == 10.0


@pytest.mark.parametrize(
    "bad",
    [
        {"check_timeout_interval": 0},
        {"min_timeout_invoke": 0},
        {"frequence_fail_invoke": 0},
        {"max_connect_exc": 0},
        {"fail_ratio": 1.5},
        {"min_frequence_fail_time": -1},
    ],
)
def test_bad_options_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|outside"):
        ShieldOptions(**bad)  # type: ignore[arg-type]


def test_unknown_endpoint_is_allowed() -> None:
    s, _ = make()
    assert s.allow(A)
    assert not s.is_blocked(A)
    assert not s.connect_failed(A)


# -- rule 1: consecutive failures, lasting at least min_frequence_fail_time
def test_consecutive_failures_block_once_the_run_lasted_long_enough() -> None:
    # a huge window and ratio out of the way: only rule 1 can fire
    s, clock = make(check_timeout_interval=1e9)
    for _ in range(5):  # many failures in a burst: run too short
        s.record(A, FAIL)
        clock.t += 0.1
    assert not s.is_blocked(A)
    clock.t = 100.0 + MIN_FREQUENCE_FAIL_TIME  # the run started at t=100
    s.record(A, FAIL)
    assert s.reason(A) is Reason.CONSECUTIVE


def test_consecutive_failures_below_the_count_do_not_block_however_long() -> None:
    s, clock = make(check_timeout_interval=1e9)
    s.record(A, FAIL)
    clock.t += 60
    s.record(A, FAIL)  # 2 < 3 consecutive
    assert not s.is_blocked(A)


def test_a_success_breaks_the_run() -> None:
    s, clock = make(check_timeout_interval=1e9)
    s.record(A, FAIL)
    s.record(A, FAIL)
    s.record(A, OK)
    clock.t += 10
    s.record(A, FAIL)
    s.record(A, FAIL)  # run of 2, started just now
    assert not s.is_blocked(A)
    clock.t += MIN_FREQUENCE_FAIL_TIME
    s.record(A, FAIL)  # third in the new run, long enough
    assert s.reason(A) is Reason.CONSECUTIVE


def test_a_threshold_of_one_blocks_on_the_first_failure() -> None:
    s, _ = make(frequence_fail_invoke=1, min_frequence_fail_time=60)
    s.record(A, FAIL)
    assert s.reason(A) is Reason.CONSECUTIVE


# -- rule 2: the window's failure ratio, checked when a call ends a window
def test_window_ratio_blocks_when_the_closing_call_failed() -> None:
    # no consecutive rule: it would need 100 failures in a row
    s, clock = make(frequence_fail_invoke=100)
    for _ in range(7):
        s.record(A, OK)
    s.record(A, FAIL)
    s.record(A, FAIL)  # 2 failures of 9: 22% < 30%
    clock.t += CHECK_TIMEOUT_INTERVAL
    s.record(A, FAIL)  # window ends: 3 of 10 = 30% >= 30%, and this call failed
    assert s.reason(A) is Reason.RATIO


def test_window_below_the_ratio_starts_afresh() -> None:
    s, clock = make(frequence_fail_invoke=100)
    for _ in range(8):
        s.record(A, OK)
    s.record(A, FAIL)
    clock.t += CHECK_TIMEOUT_INTERVAL
    s.record(A, FAIL)  # 2 of 10 = 20% < 30%: reset
    assert not s.is_blocked(A)
    h = s.health(A)
    assert h is not None
    assert h.window_calls == 0
    assert h.window_failures == 0
    assert h.window_end == clock.t + CHECK_TIMEOUT_INTERVAL


def test_window_with_too_few_failures_does_not_block() -> None:
    s, clock = make(frequence_fail_invoke=100)
    clock.t += CHECK_TIMEOUT_INTERVAL
    s.record(A, FAIL)  # 1 of 1 = 100%, but fewer than min_timeout_invoke (2)
    assert not s.is_blocked(A)


def test_window_does_not_block_when_the_closing_call_succeeded() -> None:
    s, clock = make(frequence_fail_invoke=100)
    for _ in range(5):
        s.record(A, FAIL)
    clock.t += CHECK_TIMEOUT_INTERVAL
    s.record(A, OK)  # 5 of 6 failed, but the window closes on a success
    assert not s.is_blocked(A)
    s.record(A, FAIL)  # counters were reset: 1 failure in the new window
    assert not s.is_blocked(A)


def test_window_is_not_checked_before_it_ends() -> None:
    s, clock = make(frequence_fail_invoke=100)
    for _ in range(10):
        s.record(A, FAIL)
        clock.t += 0.1  # 1 s in total, inside the 5 s window
    assert not s.is_blocked(A)


# -- rule 3: connect failures
def test_a_connect_failure_blocks_at_once_by_default() -> None:
    s, _ = make()
    s.record(A, REFUSED)
    assert s.reason(A) is Reason.CONNECT
    assert s.connect_failed(A)


def test_connect_failures_must_be_consecutive() -> None:
    s, _ = make(max_connect_exc=2, frequence_fail_invoke=100, check_timeout_interval=1e9)
    s.record(A, REFUSED)
    s.record(A, OK)  # connected since: count restarts
    s.record(A, REFUSED)
    assert not s.is_blocked(A)
    s.record(A, REFUSED)
    assert s.reason(A) is Reason.CONNECT


def test_connect_failures_are_not_counted_as_failed_calls() -> None:
    s, clock = make(max_connect_exc=100)
    for _ in range(10):
        s.record(A, REFUSED)
        clock.t += 1
    assert not s.is_blocked(A)
    h = s.health(A)
    assert h is not None
    assert (h.consecutive, h.window_failures, h.connect_failures) == (0, 0, 10)


# -- retry interval and restoring
def test_blocked_endpoint_is_retried_every_try_interval() -> None:
    s, clock = make()
    s.record(A, REFUSED)
    assert not s.allow(A)
    clock.t += TRY_TIME_INTERVAL - 0.01
    assert not s.allow(A)
    clock.t += 0.01
    assert s.allow(A)  # one try granted...
    assert not s.allow(A)  # ...and the next only after another interval
    s.record(A, FAIL)  # the try failed: still blocked
    assert s.is_blocked(A)
    clock.t += TRY_TIME_INTERVAL
    assert s.allow(A)
    s.record(A, OK)  # one success restores it
    assert not s.is_blocked(A)
    assert s.allow(A)
    assert s.allow(A)


def test_a_restored_endpoint_starts_with_clean_counters() -> None:
    s, clock = make(check_timeout_interval=1e9)
    s.record(A, REFUSED)
    clock.t += TRY_TIME_INTERVAL
    assert s.allow(A)
    s.record(A, OK)
    s.record(A, FAIL)
    s.record(A, FAIL)
    assert not s.is_blocked(A)  # the failures before the block do not count
    h = s.health(A)
    assert h is not None
    assert h.blocks == 1


def test_retain_forgets_endpoints_that_left() -> None:
    s, _ = make()
    s.record("a", REFUSED)
    s.record("b", OK)
    s.retain(["b"])
    assert s.allow("a")
    assert len(s) == 1
    assert s.blocked == []
