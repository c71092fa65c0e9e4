"""The simulator's one error class: bad simulator input, told in a sentence.

Everything an operator can get wrong when starting ``bulkpolyv sim`` (a state file missing a
key, a manifest given as state, an unknown fault setting, ``--latency fast``, a share above 1,
a port in use) raises :class:`SimError` with a message that says where, what, and what to do.
It subclasses ``ValueError`` so callers that caught ``ValueError`` before keep working.
"""

from __future__ import annotations


class SimError(ValueError):
    """Bad simulator input; ``str(error)`` is a sentence fit for the operator."""
