"""What the process exit status means: README's table, in one place.

A module of its own (re-exported by :mod:`bulkpolyv.options`) so that the commands that
only need the table, and ``bulkpolyv --help``, import nothing heavier than this.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the process exit status means; README's table, in one place."""

    OK = 0  # done / nothing to do / valid
    ERROR = 1  # an error before any write: bad manifest, bad flags, declined
    CHANGES = 2  # `plan` found changes
    PARTIAL = 3  # some items failed or were skipped
    REFUSED = 4  # refused by the safety check
    LOCKED = 5  # another run holds the lock
    INTERRUPTED = 130
