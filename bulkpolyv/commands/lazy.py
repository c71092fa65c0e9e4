"""A click group that imports a command's module only when that command runs.

``bulkpolyv --help`` and ``bulkpolyv validate`` should start in a blink, but ``plan`` and
``apply`` need aiohttp, rich and the whole engine (half a second of imports). Each command
is named in a table with its module and its one-line summary: the listing in ``--help``
comes from the table, and only the command that runs is imported. A test checks that the
table's summaries are still the commands' own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import click

from bulkpolyv.commands.common import ExitCodeGroup


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (``module:attribute``) and what ``--help`` says of it."""

    target: str
    summary: str

    def load(self) -> click.Command:
        module_name, attribute = self.target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


class LazyGroup(ExitCodeGroup):
    """An :class:`ExitCodeGroup` whose table of :class:`LazyCommand` is imported on use."""

    def __init__(self, *args: object, lazy: dict[str, LazyCommand], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(self.lazy[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing of ``--help``, from the table (no command module is imported),
        shortened to the width the way click's own listing is."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            # a stand-in carrying the summary shortens it exactly as the command would
            command = self.commands.get(name) or click.Command(name, help=self.lazy[name].summary)
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
