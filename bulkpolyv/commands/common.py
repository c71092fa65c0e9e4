"""What every command shares: how loud to be, where lines go, and the exit-code rules.

The verbosity flags (``-q``, ``-v``/``-vv``, ``--log-format``) are accepted before the
command *and* after it (``bulkpolyv plan manifest.yaml -q``): both places feed one
:class:`Output` kept on the root click context. :class:`ExitCodeGroup` makes a usage error
exit 1 instead of click's 2, because 2 means "changes pending" to a drift alarm.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from bulkpolyv.errors import BulkPolyvError
from bulkpolyv.exitcodes import ExitCode
from bulkpolyv.logs import configure_logging

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Output:
    """The run's verbosity and the one stderr console that logs and progress share.

    The rich console is made on first use: ``validate`` or ``--help`` that print no log
    line never import rich (a tenth of a second of start-up).
    """

    verbose: int = 0
    quiet: bool = False
    log_format: str = "text"
    _console: Console | None = None

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json"

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # Off a terminal the console is still used (no live bar to protect), but never
            # wraps a line: a cron mail or a grep wants one line per event.
            self._console = Console(file=sys.stderr, soft_wrap=True)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        """Log lines go through here, so the console is made by the first one."""
        self.console.print(*objects, **options)

    def configure(self) -> None:
        self._console = None
        configure_logging(
            verbose=self.verbose,
            quiet=self.quiet,
            json_format=self.json_logs,
            console=self,
        )


def output() -> Output:
    """This invocation's :class:`Output` (made by the group, refined by the command)."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, Output):
        root.obj = Output()
        root.obj.configure()
    return root.obj


def plan_colour() -> bool:
    """Colour for plans: only on a terminal, and never when ``NO_COLOR`` is set."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        out = output()
        out.verbose = max(out.verbose, value)
        out.configure()


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        out = output()
        out.quiet = True
        out.configure()


def _set_log_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        out = output()
        out.log_format = value
        out.configure()


VERBOSITY_OPTIONS = [
    click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_set_verbose,
        help="More log output (-vv for debug).",
    ),
    click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_quiet,
        help="Print nothing when all is well; errors and the summary line when not.",
    ),
    click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        expose_value=False,
        callback=_set_log_format,
        help="Log lines as text or one JSON object per line (default text).",
    ),
]


def format_option(formats: Any, help_text: str) -> Any:
    """``--format`` (stored as ``fmt``): one of ``formats``' keys, text by default."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(formats)),
        default="text",
        show_default=True,
        help=help_text,
    )


def verbosity(command: Any) -> Any:
    """Add ``-q``/``-v``/``--log-format`` to a command (they also work before it)."""
    for option in reversed(VERBOSITY_OPTIONS):
        command = option(command)
    return command


class ExitCodeGroup(click.Group):
    """A click group whose usage errors exit 1 and whose errors never show a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.pop("standalone_mode", None)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as error:
            error.show()
            sys.exit(ExitCode.ERROR)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort as abort:
            interrupted = isinstance(abort.__context__, KeyboardInterrupt)
            click.echo("bulkpolyv: interrupted" if interrupted else "Aborted.", err=True)
            sys.exit(ExitCode.INTERRUPTED if interrupted else ExitCode.ERROR)
        except BulkPolyvError as error:
            click.echo(f"bulkpolyv: {error}", err=True)
            sys.exit(ExitCode.ERROR)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)
