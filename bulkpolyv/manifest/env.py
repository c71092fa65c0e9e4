"""``${VAR}`` references in a manifest: resolved from the environment, or left as they are.

Secrets are never written in a manifest, only named (``app_secret: ${POLYV_EAST_SECRET}``);
this module swaps each name for its value and remembers the places it could not resolve, so
that the checks on values skip them instead of judging the reference text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bulkpolyv.manifest.model import Placeholder
from bulkpolyv.manifest.problems import Location, Path, Problem

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class References:
    """Resolves ``${VAR}``s; collects the problems and the unresolved places it met."""

    def __init__(self, env: Mapping[str, str], resolve: bool, problems: list[Problem]) -> None:
        self.env = env
        self.resolve_env = resolve
        self.problems = problems
        self.unresolved: set[Path] = set()

    def resolve(self, text: str, path: Path, where: Location, shown: str) -> str:
        """``text`` with each ``${VAR}`` replaced; a :class:`Placeholder` if any is left."""
        if not self.resolve_env:
            if ENV_REFERENCE.search(text):
                self.unresolved.add(path)
                return Placeholder(text)
            return text
        missing = False

        def replace(match: re.Match[str]) -> str:
            nonlocal missing
            name = match.group(1)
            value = self.env.get(name)
            if value:
                return value
            # An empty secret or id is a mistake in the environment, not a value.
            state = "is not set" if value is None else "is set but empty"
            message = f"environment variable {name} {state}"
            self.problems.append(Problem(where, shown, message, environment=True))
            missing = True
            return match.group(0)

        resolved = ENV_REFERENCE.sub(replace, text)
        if missing:
            self.unresolved.add(path)
            return Placeholder(resolved)
        return resolved

    def is_unresolved(self, path: Path) -> bool:
        return any(path[: len(p)] == p for p in self.unresolved)

    def message_at(self, path: Path, message: str) -> str | None:
        """What to say about a value that failed a check at ``path``.

        Where a ``${VAR}`` was not resolved the text is not the value: with the environment
        the missing variable has been reported already (None: say nothing more); without it
        (``--no-env``) the value cannot be checked where a number or Y/N is needed, and the
        manifest cannot be built, so say that rather than nothing.
        """
        if not self.is_unresolved(path):
            return message
        if self.resolve_env:
            return None
        return (
            f"{message}: a ${{VAR}} here can only be checked with its value (set it, drop --no-env)"
        )
