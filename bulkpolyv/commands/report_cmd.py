"""``bulkpolyv report show REPORT…``: past runs, read back and combined into one summary.

Shards of one manifest and the ``--retry-failed`` runs after a run are combined the same
way (:func:`bulkpolyv.reportview.summarise`): for each item the latest report says how it
ended. Exit 0 when everything in them is done, 3 when something is still failed, skipped or
in conflict, 1 when a file is not a report.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bulkpolyv import reportview
from bulkpolyv.commands.common import format_option, verbosity
from bulkpolyv.options import ExitCode, fail
from bulkpolyv.report import ReportError, read_report

RENDERERS = {
    "text": reportview.render_text,
    "markdown": reportview.render_markdown,
    "json": reportview.render_json,
}


@click.group()
def report() -> None:
    """Read the reports of past runs (`apply --report FILE`)."""


@click.argument("reports", metavar="REPORT…", nargs=-1, required=True, type=click.Path())
@format_option(RENDERERS, "text to read, markdown for a ticket, json for programs.")
@verbosity
def show(reports: tuple[str, ...], fmt: str) -> None:
    """Counts, failures grouped by reason with examples, duration, requests and cool-downs;
    several reports (shards, retries) combine into one summary."""
    try:
        loaded = [read_report(Path(path)) for path in reports]
    except ReportError as error:
        fail(str(error))
    summary = reportview.summarise(loaded)
    click.echo(RENDERERS[fmt](summary))
    sys.exit(ExitCode.OK if summary.complete else ExitCode.PARTIAL)


SHOW = report.command(name="show")(show)
report.add_command(SHOW, name="merge")  # an alias: combining several reports is what show does
