"""The run's long-lived objects kept out of the cyclic garbage collector's way.

A run holds its manifest, its plan and every outcome until the report is written: a
million rows are millions of objects that never become garbage, yet each full collection
walks them all again, while aiohttp's short-lived objects trigger collections by the
thousand. :func:`long_lived` moves everything alive when a phase begins into the
collector's permanent generation (:func:`gc.freeze`) and gives it back when the phase
ends (:func:`gc.unfreeze`), so a library caller's process gets its heap back as it was.
bench/efficiency.py measures what it saves.

Nothing is freed later than it would have been: frozen objects are still freed by their
reference counts, only cycles among them wait until the phase ends. A process that froze
objects itself (``gc.get_freeze_count()``) or turned the collector off is left alone, since
our unfreeze would undo its freeze. (One that freezes objects *during* a phase, from an
observer, gets them back at the phase's end: the collector cannot tell whose they were.)
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def long_lived() -> Iterator[None]:
    """Within: what was alive at entry is not scanned by the collector."""
    ours = gc.isenabled() and gc.get_freeze_count() == 0
    if ours:
        gc.freeze()
    try:
        yield
    finally:
        if ours:
            gc.unfreeze()
