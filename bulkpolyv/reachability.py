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
    "rate limit" pauses for 301 reads against a closed port). Pages before POLYV ever
    answered are no block but most likely a wrong address (a wrong ``--api-base`` path,
    which no cool-down mends): a burst of them is "not the API".
    """

    def __init__(self, burst: int) -> None:
        self.burst = burst
        self.after_cooldown = min(3, burst)
        self.failures_in_a_row = 0
        self.wall_generation: int | None = None  # the cool-down a wall bought, if any
        self.failures_after_wall = 0
        self.answered_once = False
        self.pages_from_the_start = 0

    def answered(self) -> None:
        self.failures_in_a_row = self.failures_after_wall = 0
        self.wall_generation = None
        self.answered_once = True

    def failed(self, generation: int, *, page: bool = False) -> str | None:
        """One more wall-like failure of a request sent in ``generation`` (``page``: an
        answer that is not POLYV's, such as a 404 or a WAF's 403): "cooldown",
        "unreachable", "not the API", or None (keep going)."""
        if page and not self.answered_once:
            self.pages_from_the_start += 1
            return "not the API" if self.pages_from_the_start >= self.burst else None
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
