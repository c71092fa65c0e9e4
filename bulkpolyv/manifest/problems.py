"""Where a manifest value came from, and what is wrong with it.

Validation never stops at the first mistake: every check appends a :class:`Problem` with
its place, and the caller reports them all, sorted, at once (the octoDNS habit).
"""

from __future__ import annotations

from dataclasses import dataclass

from bulkpolyv.errors import BulkPolyvError

Path = tuple[str | int, ...]


@dataclass(frozen=True, order=True, slots=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    location: Location
    path: str
    message: str
    # A ${VAR} that is not set (or empty): the environment's mistake, not the file's.
    environment: bool = False

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.location}: {where}{self.message}"


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class ManifestError(BulkPolyvError):
    """A manifest that cannot be used; carries every problem found, sorted by place."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.location, p.path, p.message))
        self.only_environment = all(problem.environment for problem in self.problems)
        count = len(self.problems)
        lines = [str(problem) for problem in self.problems]
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in the manifest:\n" + "\n".join(lines)
        )
