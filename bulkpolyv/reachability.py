"""Whether the API host still answers, judged from the failures the rate gate sees."""

from __future__ import annotations


class Reachability:
    """Whether the host still answers, from the failures the gate sees.

    A connection that fails before the host ever answered is the client's UNREACHABLE:
    the gate stops the run at once. After the host has answered, a wall of failures that
    are not POLYV answers (refused or reset connections, HTML pages from a WAF) may be an
    IP block POLYV does not announce (nothing public says how a block looks): so the first
    wall buys one cool-down, and if the first requests sent after it fail the same way, the
    run stops as unreachable instead of pausing again and again (issue 12: ~2.5 h of
    "rate limit" pauses for 301 reads against a closed port).
    """

    def __init__(self, burst: int) -> None:
        self.burst = burst
        self.after_cooldown = min(3, burst)
        self.failures_in_a_row = 0
        self.wall_generation: int | None = None  # the cool-down a wall bought, if any
        self.failures_after_wall = 0
        self.answered_once = False
        self.foreign_in_a_row = 0

    def answered(self) -> None:
        self.failures_in_a_row = self.failures_after_wall = self.foreign_in_a_row = 0
        self.wall_generation = None
        self.answered_once = True

    def foreign_from_the_start(self) -> bool:
        """One more page that is not a POLYV answer (a 404, a WAF's 403) before POLYV ever
        answered. True at a burst of them: the address is most likely not POLYV's API (a
        wrong ``--api-base`` path), which no cool-down would mend. Once POLYV has answered,
        such pages are left to :meth:`failed`, as a possible block."""
        self.foreign_in_a_row += 1
        return self.foreign_in_a_row >= self.burst

    def failed(self, generation: int) -> str | None:
        """One more wall-like failure of a request sent in ``generation``: "cooldown",
        "unreachable", or None (keep going)."""
        if self.wall_generation is not None and generation > self.wall_generation:
            self.failures_after_wall += 1
            if self.failures_after_wall >= self.after_cooldown:
                return "unreachable"
            return None
        self.failures_in_a_row += 1
        if self.failures_in_a_row >= self.burst and self.wall_generation is None:
            self.failures_in_a_row = 0
            self.wall_generation = generation
            return "cooldown"
        return None
