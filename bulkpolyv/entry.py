"""The ``bulkpolyv`` command's entry point: signals are the CLI's before anything heavy loads.

``bulkpolyv.cli`` imports click and the command table; a Ctrl-C (or a kill) during that
import would otherwise print a ``KeyboardInterrupt`` traceback, or kill the process with
no word. So the signal handling is set first, and the import is guarded.
"""

from __future__ import annotations

import signal
import sys

from bulkpolyv.exitcodes import ExitCode  # the exit-code table alone: nothing heavy


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def interrupt_on_signals() -> None:
    """Outside a run's own handling (imports, a prompt, printing a plan), SIGTERM and
    SIGHUP end the program as Ctrl-C does — "bulkpolyv: interrupted", exit 130 — rather
    than killing it silently (exit 143/129). A signal already ignored (``nohup``) stays
    ignored."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _interrupt)


def ignore_late_signals() -> None:
    """The command is done and its exit status decided. A signal from here on (the
    interpreter tearing down) would only turn that status into "killed by SIGINT", with
    the work already done and said; it is ignored instead."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def run() -> object:
    """The command, to its exit status (what ``sys.exit`` takes); no traceback for a signal."""
    interrupt_on_signals()
    # Text from POLYV may hold a lone surrogate ("\\ud800" in its JSON): printed as an
    # escape, not a UnicodeEncodeError in the middle of a plan. (stderr already does this.)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        from bulkpolyv.cli import cli

        cli.main(prog_name="bulkpolyv")
    except KeyboardInterrupt:  # before a run set up its own handling (imports, a prompt)
        sys.stderr.write("bulkpolyv: interrupted\n")
        return ExitCode.INTERRUPTED
    except SystemExit as done:  # click always ends this way
        return done.code
    return 0  # pragma: no cover - click's standalone mode always exits


def main() -> None:
    """The ``bulkpolyv`` program: :func:`run`, then exit; signals from then on are ignored
    (not in :func:`run`, which a test or a caller may run in its own process)."""
    status = run()
    ignore_late_signals()
    sys.exit(status)
