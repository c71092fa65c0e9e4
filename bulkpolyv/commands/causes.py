"""One message per cause: what went wrong in a run, grouped, instead of a line per item.

An account whose credentials POLYV refused is one line (with the number of items it
affects and what to check); any other failure is one line per distinct reason with a
few examples; an interrupted run's untouched items are one line. Pure: works on the
plan's problems and the run's outcomes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from bulkpolyv.errors import gloss_of
from bulkpolyv.plan import ItemKey, PlanProblem
from bulkpolyv.report import ItemOutcome, Status

EXAMPLES = 3
# The executor's words for an account refused by POLYV and for its later items.
_AUTH_MARKERS = ("authentication failed", "after an authentication error")
# "GET /path: 签名错误 — bad signature (HTTP 200, …)": POLYV's own words sit after the
# endpoint and before the gloss or the details in brackets.
_POLYV_WORDS = re.compile(r"^(?:.*?: )?(?:[A-Z]+ \S+: )?(?P<words>[^—(]+?)\s*(?:—|\(|$)")


@dataclass(frozen=True)
class Trouble:
    account: str
    key: ItemKey
    status: str
    message: str
    auth: bool


def from_plan(problems: Iterable[PlanProblem]) -> list[Trouble]:
    return [
        Trouble(p.key.account, p.key, "failed", p.message, p.auth or _is_auth(p.message))
        for p in problems
    ]


def from_outcomes(outcomes: Iterable[ItemOutcome]) -> list[Trouble]:
    return [
        Trouble(o.key.account, o.key, o.status.value, o.message, _is_auth(o.message))
        for o in outcomes
        if o.status in (Status.FAILED, Status.SKIPPED, Status.CONFLICT)
    ]


def _is_auth(message: str) -> bool:
    return any(marker in message for marker in _AUTH_MARKERS)


def explained(message: str, account: str) -> str:
    """``message`` with POLYV's words glossed and what to check, the way
    :func:`bulkpolyv.errors.explain` says it: ``…: 签名错误 — bad signature: check
    app_secret for account east (HTTP 403, POLYV code 10002, …)``."""
    message = message.removeprefix("could not read the live state: ")
    match = _POLYV_WORDS.match(message)
    gloss = gloss_of(match.group("words")) if match else None
    if gloss is None:
        return message
    told = gloss[0] + (": " + gloss[1].format(account=account) if gloss[1] else "")
    if f" — {gloss[0]}" in message:  # the error's own text carries the gloss, not the hint
        return message.replace(f" — {gloss[0]}", f" — {told}", 1)
    return f"{message} — {told}"


def cause_lines(troubles: Iterable[Trouble]) -> list[str]:
    """One line per refused account, then one line (with examples) per other reason."""
    by_account: dict[str, list[Trouble]] = defaultdict(list)
    by_reason: dict[tuple[str, str], list[Trouble]] = defaultdict(list)
    for trouble in troubles:
        if trouble.auth:
            by_account[trouble.account].append(trouble)
        else:
            by_reason[(trouble.status, trouble.message)].append(trouble)
    lines = []
    for account, items in sorted(by_account.items()):
        lines.append(
            f"account {account}: POLYV refused its credentials ({_items(len(items))} not done): "
            + explained(_first_cause(items), account)
        )
    ordered = sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    for (status, message), items in ordered:
        names = sorted(str(t.key) for t in items)
        more = len(names) - EXAMPLES
        examples = ", ".join(names[:EXAMPLES]) + (f" and {more} more" if more > 0 else "")
        lines.append(f"{_items(len(items))} {status}: {message} (e.g. {examples})")
    return lines


def _first_cause(items: list[Trouble]) -> str:
    """The refusal itself rather than the "skipped after" echoes of it."""
    direct = [t.message for t in items if "after an authentication error" not in t.message]
    return (direct or [items[0].message])[0]


def _items(count: int) -> str:
    return f"{count:,} item{'s' if count != 1 else ''}"
