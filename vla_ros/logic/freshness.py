"""Freshness of stamped inputs: age against a limit, and stamps that must keep advancing."""

from __future__ import annotations

from dataclasses import dataclass


def age_problem(stamp: float, now: float, max_age: float, what: str) -> str | None:
    """Why an input stamped `stamp` is not fresh at `now`, or None if it is.

    Stamps from the future beyond `max_age` are refused too: they come from an unsynchronised
    clock (or a sim-time/wall-time mix-up), and their age would never grow.
    """
    age = now - stamp
    if age > max_age:
        return f"{what} is {age:.2f} s old (max {max_age:g} s)"
    if age < -max_age:
        return f"{what} is stamped {-age:.2f} s in the future: are the clocks synchronised?"
    return None


@dataclass
class StampSequence:
    """Accepts only stamps newer than the last accepted one; counts the rest."""

    last: float | None = None
    repeated: int = 0

    def advance(self, stamp: float) -> bool:
        if self.last is not None and stamp <= self.last:
            self.repeated += 1
            return False
        self.last = stamp
        return True
