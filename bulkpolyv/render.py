"""Printing a plan: text for people, JSON for programs, Markdown for review threads.

The plan knows nothing about these renderers (as octoDNS's ``Plan`` knows nothing about
``PlanLogger`` or ``PlanMarkdown``); every one shows values only as
:meth:`FieldChange.shown` gives them, so nothing secret is printed. Text is coloured only
when the caller says so (``color=True``): the command decides, from the terminal and
``NO_COLOR``, never this module.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator

import click

from bulkpolyv.plan import FieldChange, Operation, Plan, PlanProblem

# terraform's colours: yellow for a change, red for what goes away, cyan for the unknown.
SYMBOL_COLOURS = {"~": "yellow", "-": "red", "?": "cyan", "!": "red"}


def _grouped(plan: Plan) -> Iterator[tuple[str, list[Operation | PlanProblem]]]:
    entries: list[Operation | PlanProblem] = [*plan.operations, *plan.problems]
    entries.sort(key=lambda e: (e.key, isinstance(e, PlanProblem)))
    current: str | None = None
    group: list[Operation | PlanProblem] = []
    for entry in entries:
        if entry.key.account != current and group:
            yield current or "", group
            group = []
        current = entry.key.account
        group.append(entry)
    if group:
        yield current or "", group


def _describe_changes(changes: Iterable[FieldChange]) -> str:
    parts = []
    for change in changes:
        before, after = change.shown()
        if change.field == "password":
            parts.append("password (changed)")
        else:
            parts.append(f"{change.field} {before} → {after}")
    return ", ".join(parts)


def _what(entry: Operation | PlanProblem) -> str:
    key = entry.key
    if key.is_callback:
        return f"{key.callback_kind} callback"
    if key.is_monitoring:
        return "monitoring"
    return f"monitor {key.monitor_id}"


def _describe(op: Operation) -> str:
    """What one operation does; a switch-off names what is removed (redacted)."""
    if op.key.is_callback or op.key.is_monitoring:
        before, after = op.changes[0].shown()
        if op.key.is_callback and op.symbol == "-":
            return f"{before} → switched off"
        return f"{before} → {after}"
    return _describe_changes(op.changes)


def _paint(text: str, symbol: str, color: bool) -> str:
    return click.style(text, fg=SYMBOL_COLOURS[symbol]) if color else text


def render_text(plan: Plan, color: bool = False) -> str:
    lines: list[str] = []
    for account, entries in _grouped(plan):
        lines.append(click.style(account, bold=True) if color else account)
        channel = None
        blind = [e for e in entries if isinstance(e, Operation) and e.write_only]
        for entry in entries:
            if entry in blind:  # said once per account below, not one line each
                continue
            if entry.key.channel_id and entry.key.channel_id != channel:
                channel = entry.key.channel_id
                lines.append(f"  channel {channel}")
            indent = "    " if entry.key.channel_id else "  "
            if isinstance(entry, PlanProblem):
                head = _paint(f"! {_what(entry)}", "!", color)
                lines.append(f"{indent}{head}: {entry.message}  [{entry.source}]")
            else:
                head = _paint(f"{entry.symbol} {_what(entry)}", entry.symbol, color)
                lines.append(f"{indent}{head}: {_describe(entry)}  [{entry.source}]")
        if blind:
            lines.append(_write_only_line(blind, color))
    lines.extend(_warning_lines(plan, color))
    total = totals_line(plan)
    lines.append(click.style(total, bold=True) if color else total)
    return "\n".join(lines)


def _write_only_line(operations: list[Operation], color: bool) -> str:
    """``? 80 write-only items written again (enable ×79, playback_callback ×1)``: values
    POLYV does not return, so no plan can show whether they differ (JSON lists each)."""
    fields = Counter(change.field for op in operations for change in op.changes)
    shown = ", ".join(f"{name} ×{count}" for name, count in sorted(fields.items()))
    many = len(operations) != 1
    head = _paint(f"? {len(operations)} write-only item{'s' if many else ''}", "?", color)
    return f"  {head} written again, unverifiable ({shown})"


def _warning_lines(plan: Plan, color: bool) -> list[str]:
    return [
        (click.style("Warning:", fg="yellow", bold=True) if color else "Warning:") + f" {line}"
        for line in plan.warnings
    ]


def totals_line(plan: Plan) -> str:
    """terraform's summary: ``Plan: 28 to change, 1 to switch off, 60 unchanged.``"""
    c = plan.counts()
    write_only = (
        f" {c['write_only']:,} write-only item{'s' if c['write_only'] != 1 else ''} "
        "will be written again (POLYV does not return the value, so it cannot be checked)."
        if c["write_only"]
        else ""
    )
    if not plan.has_drift and not plan.problems:
        if not c["unchanged"]:
            return "No changes." + write_only
        items = f"{c['unchanged']:,} item{'s' if c['unchanged'] != 1 else ''}"
        return f"No changes. {items} already as the manifest says." + write_only
    unknown = f" ({c['unknown']:,} of them unknown)" if c["unknown"] else ""
    errors = f", {c['errors']:,} error{'s' if c['errors'] != 1 else ''}" if c["errors"] else ""
    return (
        f"Plan: {c['change']:,} to change{unknown}, {c['switch_off']:,} to switch off, "
        f"{c['unchanged']:,} unchanged{errors}." + write_only
    )


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False)


def _row(values: Iterable[object]) -> str:
    return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"


def render_markdown(plan: Plan) -> str:
    rows = [
        "| op | account | channel | monitor | field | before | after | manifest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op in plan.operations:
        for change in op.changes:
            before, after = change.shown()
            key = op.key
            rows.append(
                _row(
                    (
                        op.symbol + " " + op.kind.value,
                        key.account,
                        key.channel_id or "",
                        key.monitor_id or "",
                        change.field,
                        before,
                        after,
                        op.source,
                    )
                )
            )
    for problem in plan.problems:
        key = problem.key
        rows.append(
            _row(
                (
                    "! error",
                    key.account,
                    key.channel_id or "",
                    key.monitor_id or "",
                    key.setting,
                    "",
                    problem.message,
                    problem.source,
                )
            )
        )
    warnings = [f"> **Warning:** {line}" for line in plan.warnings]
    return "\n".join([*rows, "", *warnings, *([""] if warnings else []), totals_line(plan)])
