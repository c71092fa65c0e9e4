"""Reading past runs: several reports combined into one summary an operator can read.

Shards of one manifest and the ``--retry-failed`` runs that followed a run are combined the
same way: reports are taken in the order they started, and for each item the last report
that mentions it says how it ended. Failures are grouped by reason (one line per cause, with
a few examples), never listed one by one. Pure: works on report dictionaries.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KEY_FIELDS = ("account", "channel_id", "monitor_id", "callback", "setting")
TROUBLE = ("failed", "conflict", "skipped")
EXAMPLES = 3


@dataclass(frozen=True)
class Cause:
    status: str
    reason: str
    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Summary:
    reports: int
    statuses: tuple[str, ...]  # each report's own status, in order
    counts: Mapping[str, int]
    requests: int
    cooldowns: int
    duration: float  # the runs' own durations added up
    started: str | None
    finished: str | None
    causes: tuple[Cause, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        return not any(self.counts.get(status, 0) for status in TROUBLE)


def item_key(item: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(item.get(name) for name in KEY_FIELDS)


def describe_item(item: Mapping[str, Any]) -> str:
    parts = [str(item.get("account"))]
    for name in KEY_FIELDS[1:]:
        if item.get(name) is not None:
            parts.append(str(item[name]))
    return "/".join(parts)


def summarise(reports: Iterable[Mapping[str, Any]]) -> Summary:
    ordered = sorted(reports, key=lambda r: str(r.get("started", "")))
    final: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    requests = cooldowns = 0
    duration = 0.0
    for report in ordered:
        totals = report.get("totals", {})
        requests += int(totals.get("requests", 0))
        cooldowns += int(totals.get("cooldowns", 0))
        duration += float(report.get("duration", 0.0))
        for item in report.get("items", []):
            final[item_key(item)] = item
    counts = Counter(str(item.get("status")) for item in final.values())
    return Summary(
        reports=len(ordered),
        statuses=tuple(str(r.get("status")) for r in ordered),
        counts=dict(sorted(counts.items())),
        requests=requests,
        cooldowns=cooldowns,
        duration=round(duration, 3),
        started=min((str(r["started"]) for r in ordered if r.get("started")), default=None),
        finished=max((str(r["finished"]) for r in ordered if r.get("finished")), default=None),
        causes=_causes(final.values()),
    )


def _causes(items: Iterable[Mapping[str, Any]]) -> tuple[Cause, ...]:
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in items:
        status = str(item.get("status"))
        if status in TROUBLE:
            reason = str(item.get("message") or "(no reason given)")
            grouped[(status, reason)].append(describe_item(item))
    causes = [
        Cause(status, reason, len(names), tuple(sorted(names)[:EXAMPLES]))
        for (status, reason), names in grouped.items()
    ]
    causes.sort(key=lambda c: (-c.count, c.status, c.reason))
    return tuple(causes)


def render_text(summary: Summary) -> str:
    counts = ", ".join(f"{count} {status}" for status, count in summary.counts.items())
    lines = [
        f"{summary.reports} report{'s' if summary.reports != 1 else ''} "
        f"({', '.join(summary.statuses)}), {summary.started} to {summary.finished}",
        f"Items: {counts or 'none'}",
        f"Requests: {summary.requests}, cool-downs: {summary.cooldowns}, "
        f"run time: {summary.duration:.1f}s",
    ]
    if summary.causes:
        lines.append("Not done, by cause:")
        for cause in summary.causes:
            more = cause.count - len(cause.examples)
            examples = ", ".join(cause.examples) + (f" and {more} more" if more else "")
            lines.append(f"  {cause.count} {cause.status}: {cause.reason}")
            lines.append(f"      e.g. {examples}")
    else:
        lines.append("Everything in these reports is done.")
    return "\n".join(lines)


def render_markdown(summary: Summary) -> str:
    lines = [
        f"**{summary.reports} report(s)** ({', '.join(summary.statuses)}), "
        f"{summary.started} to {summary.finished}",
        "",
        "| outcome | items |",
        "|---|---:|",
        *(f"| {status} | {count} |" for status, count in summary.counts.items()),
        "",
        f"Requests: {summary.requests}, cool-downs: {summary.cooldowns}, "
        f"run time: {summary.duration:.1f}s",
    ]
    if summary.causes:
        lines += ["", "| items | outcome | cause | examples |", "|---:|---|---|---|"]
        for cause in summary.causes:
            reason = cause.reason.replace("|", "\\|")
            lines.append(
                f"| {cause.count} | {cause.status} | {reason} | {', '.join(cause.examples)} |"
            )
    return "\n".join(lines)


def render_json(summary: Summary) -> str:
    return json.dumps(
        {
            "reports": summary.reports,
            "statuses": list(summary.statuses),
            "counts": dict(summary.counts),
            "requests": summary.requests,
            "cooldowns": summary.cooldowns,
            "duration": summary.duration,
            "started": summary.started,
            "finished": summary.finished,
            "complete": summary.complete,
            "causes": [
                {
                    "status": c.status,
                    "reason": c.reason,
                    "count": c.count,
                    "examples": list(c.examples),
                }
                for c in summary.causes
            ],
        },
        indent=2,
        ensure_ascii=False,
    )
