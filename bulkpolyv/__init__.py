"""bulkpolyv: bring the live-streaming settings of many POLYV accounts to a YAML manifest.

The library behind the ``bulkpolyv`` command, in the order a run uses it::

    manifest = load_manifest("accounts.yaml")
    async with open_runtime(manifest, RunSettings(), events=RunProgress()) as runtime:
        plan = await read_plan(runtime, manifest)      # read the live state, diff
        result = await apply(manifest, runtime)        # plan, check, write, report

``make_plan`` is the pure diff (manifest + live state → :class:`Plan`), ``PolyvClient``
the four POLYV calls, and :class:`RunEvents` what observers of a run (journal, progress
display, tests) implement. Every error a user can meet is a :class:`BulkPolyvError`.

Names are imported on first use (PEP 562), so ``import bulkpolyv`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name → the module that defines it
_EXPORTS = {
    "load_manifest": "bulkpolyv.manifest",
    "Manifest": "bulkpolyv.manifest",
    "ManifestError": "bulkpolyv.manifest",
    "make_plan": "bulkpolyv.plan",
    "check_safety": "bulkpolyv.safety",
    "ItemKey": "bulkpolyv.plan",
    "Operation": "bulkpolyv.plan",
    "Plan": "bulkpolyv.plan",
    "render_text": "bulkpolyv.render",
    "render_json": "bulkpolyv.render",
    "render_markdown": "bulkpolyv.render",
    "RunSettings": "bulkpolyv.run",
    "Runtime": "bulkpolyv.run",
    "open_runtime": "bulkpolyv.run",
    "read_plan": "bulkpolyv.run",
    "apply": "bulkpolyv.run",
    "select": "bulkpolyv.selection",
    "ApplyResult": "bulkpolyv.report",
    "ApplyStatus": "bulkpolyv.report",
    "ItemOutcome": "bulkpolyv.report",
    "Status": "bulkpolyv.report",
    "ReportError": "bulkpolyv.report",
    "failed_items": "bulkpolyv.report",
    "RunEvents": "bulkpolyv.events",
    "FanOut": "bulkpolyv.events",
    "RunProgress": "bulkpolyv.progress",
    "Journal": "bulkpolyv.journal",
    "RunLock": "bulkpolyv.runlock",
    "LockBusy": "bulkpolyv.runlock",
    "ReviewedPlan": "bulkpolyv.planfile",
    "ReviewedPlanError": "bulkpolyv.planfile",
    "PolyvClient": "bulkpolyv.client",
    "Credentials": "bulkpolyv.records",
    "signed_params": "bulkpolyv.signing",
    "BulkPolyvError": "bulkpolyv.errors",
    "PolyvError": "bulkpolyv.errors",
    "ErrorKind": "bulkpolyv.errors",
}

__all__ = [
    "ApplyResult",
    "ApplyStatus",
    "BulkPolyvError",
    "Credentials",
    "ErrorKind",
    "FanOut",
    "ItemKey",
    "ItemOutcome",
    "Journal",
    "LockBusy",
    "Manifest",
    "ManifestError",
    "Operation",
    "Plan",
    "PolyvClient",
    "PolyvError",
    "ReportError",
    "ReviewedPlan",
    "ReviewedPlanError",
    "RunEvents",
    "RunLock",
    "RunProgress",
    "RunSettings",
    "Runtime",
    "Status",
    "apply",
    "check_safety",
    "failed_items",
    "load_manifest",
    "make_plan",
    "open_runtime",
    "read_plan",
    "render_json",
    "render_markdown",
    "render_text",
    "select",
    "signed_params",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bulkpolyv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from bulkpolyv.client import PolyvClient
    from bulkpolyv.errors import BulkPolyvError, ErrorKind, PolyvError
    from bulkpolyv.events import FanOut, RunEvents
    from bulkpolyv.journal import Journal
    from bulkpolyv.manifest import Manifest, ManifestError, load_manifest
    from bulkpolyv.plan import ItemKey, Operation, Plan, make_plan
    from bulkpolyv.planfile import ReviewedPlan, ReviewedPlanError
    from bulkpolyv.progress import RunProgress
    from bulkpolyv.records import Credentials
    from bulkpolyv.render import render_json, render_markdown, render_text
    from bulkpolyv.report import (
        ApplyResult,
        ApplyStatus,
        ItemOutcome,
        ReportError,
        Status,
        failed_items,
    )
    from bulkpolyv.run import RunSettings, Runtime, apply, open_runtime, read_plan
    from bulkpolyv.runlock import LockBusy, RunLock
    from bulkpolyv.safety import check_safety
    from bulkpolyv.selection import select
    from bulkpolyv.signing import signed_params
