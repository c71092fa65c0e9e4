"""Printing a plan: text for people, JSON for programs, Markdown for review threads.

The plan knows nothing about these renderers (as octoDNS's ``Plan`` knows nothing about
``PlanLogger`` or ``PlanMarkdown``); every one shows values only as
:meth:`FieldChange.shown` gives them, so nothing secret is printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from bulkpolyv.plan import FieldChange, Operation, OpKind, Plan, PlanProblem


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


def render_text(plan: Plan) -> str:
    lines: list[str] = []
    for account, entries in _grouped(plan):
        lines.append(f"{account}")
        channel = None
        for entry in entries:
            if entry.key.channel_id and entry.key.channel_id != channel:
                channel = entry.key.channel_id
                lines.append(f"  channel {channel}")
            indent = "    " if entry.key.channel_id else "  "
            what = "record callback" if entry.key.is_callback else f"monitor {entry.key.monitor_id}"
            if isinstance(entry, PlanProblem):
                lines.append(f"{indent}! {what}: {entry.message}  [{entry.source}]")
            elif entry.key.is_callback:
                before, after = entry.changes[0].shown()
                verb = (
                    "switch off"
                    if entry.kind is OpKind.SWITCH_OFF_CALLBACK
                    else f"{before} → {after}"
                )
                lines.append(f"{indent}{entry.symbol} {what}: {verb}  [{entry.source}]")
            else:
                lines.append(
                    f"{indent}{entry.symbol} {what}: {_describe_changes(entry.changes)}"
                    f"  [{entry.source}]"
                )
    lines.append(totals_line(plan))
    return "\n".join(lines)


def totals_line(plan: Plan) -> str:
    c = plan.counts()
    if not plan.operations and not plan.problems:
        items = f"{c['unchanged']:,} item{'s' if c['unchanged'] != 1 else ''}"
        return f"No changes. {items} already as the manifest says."
    return (
        f"Plan: {c['change']:,} to change ({c['unknown']:,} of them unknown), "
        f"{c['switch_off']:,} to switch off, {c['unchanged']:,} unchanged, "
        f"{c['errors']:,} error{'s' if c['errors'] != 1 else ''}."
    )


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False)


def render_markdown(plan: Plan) -> str:
    rows = [
        "| op | account | channel | monitor | field | before | after | manifest |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    for op in plan.operations:
        for change in op.changes:
            before, after = change.shown()
            rows.append(
                "| "
                + " | ".join(
                    cell(v)
                    for v in (
                        op.symbol + " " + op.kind.value,
                        op.key.account,
                        op.key.channel_id or "",
                        op.key.monitor_id or "",
                        change.field,
                        before,
                        after,
                        op.source,
                    )
                )
                + " |"
            )
    for problem in plan.problems:
        rows.append(
            "| "
            + " | ".join(
                cell(v)
                for v in (
                    "! error",
                    problem.key.account,
                    problem.key.channel_id or "",
                    problem.key.monitor_id or "",
                    "",
                    "",
                    problem.message,
                    problem.source,
                )
            )
            + " |"
        )
    return "\n".join([*rows, "", totals_line(plan)])
