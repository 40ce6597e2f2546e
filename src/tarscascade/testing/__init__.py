"""Helpers for tests of tarscascade and of code that uses it (bounded waits, fakes)."""

from tarscascade.testing.wait import eventually

__all__ = ["eventually"]
