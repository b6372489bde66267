"""Test doubles shared by several test files (imported as `from fakes import ...`)."""
from __future__ import annotations


class FakeClock:
    """A monotonic clock that only moves when something sleeps (or a test advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
