"""What a run tells its observers, handed in when the executor and the gate are built.

:class:`RunEvents` has a no-op default for every event, so an observer overrides only
what it cares about: the journal records ``sending`` and ``outcome``, the progress display
counts reads and outcomes and shows cool-downs, a test records whatever it asserts on.
:class:`FanOut` hands each event to several observers, in the order given;
:func:`fan_out` makes one only where there is more than one observer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkpolyv.plan import Operation
    from bulkpolyv.report import ItemOutcome


class RunEvents:
    """The events of a run. Every method is called on the event loop and must not block."""

    def phase(self, name: str, total: int, requests: Callable[[], int]) -> None:
        """A phase begins: ``"read"`` (the live state) or ``"apply"``, with ``total``
        items; ``requests()`` is the number of requests sent so far."""

    def phase_done(self) -> None:
        """The phase begun last has ended (also when it was interrupted)."""

    def read_done(self) -> None:
        """One live-state read finished (whatever its result)."""

    def sending(self, op: Operation) -> None:
        """``op``'s write is about to be sent."""

    def outcome(self, outcome: ItemOutcome) -> None:
        """An item is finished."""

    def cooldown(self, seconds: float) -> None:
        """POLYV said "rate limited": every request pauses for ``seconds``."""

    def retry(self, account: str, attempt: int, wait: float, reason: str) -> None:
        """Attempt ``attempt`` of a request for ``account`` failed; the next follows in
        ``wait`` seconds."""


class FanOut(RunEvents):
    """Every event to each of ``observers``, in order."""

    def __init__(self, *observers: RunEvents) -> None:
        self.observers = observers

    def phase(self, name: str, total: int, requests: Callable[[], int]) -> None:
        for observer in self.observers:
            observer.phase(name, total, requests)

    def phase_done(self) -> None:
        for observer in self.observers:
            observer.phase_done()

    def read_done(self) -> None:
        for observer in self.observers:
            observer.read_done()

    def sending(self, op: Operation) -> None:
        for observer in self.observers:
            observer.sending(op)

    def outcome(self, outcome: ItemOutcome) -> None:
        for observer in self.observers:
            observer.outcome(outcome)

    def cooldown(self, seconds: float) -> None:
        for observer in self.observers:
            observer.cooldown(seconds)

    def retry(self, account: str, attempt: int, wait: float, reason: str) -> None:
        for observer in self.observers:
            observer.retry(account, attempt, wait, reason)


def fan_out(*observers: RunEvents | None) -> RunEvents:
    """The observers (None left out) as one, in order: a :class:`FanOut` only where there
    are several, and one level of them, however they were nested. Each event is a call
    per item or per request; a fan-out around one observer, or inside another, only
    added a loop to each."""
    flat: list[RunEvents] = []
    for observer in observers:
        if type(observer) is FanOut:  # (a subclass may filter: it stays as it is)
            flat.extend(observer.observers)
        elif observer is not None:
            flat.append(observer)
    if not flat:
        return RunEvents()
    return flat[0] if len(flat) == 1 else FanOut(*flat)
