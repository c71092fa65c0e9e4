"""YAML to plain Python values, remembering the file, line and column of every value.

PyYAML's constructed objects forget where they came from; its node tree does not. So the
manifest is *composed* (libyaml when available) and converted here by hand, which also lets
us refuse what ``yaml.safe_load`` silently accepts: duplicate keys (the last one would win),
alias bombs (a few lines that expand to billions of values) and absurd nesting.
"""

from __future__ import annotations

from typing import Any

import yaml

from bulkpolyv.manifest.problems import Location, Path, Problem, format_path

MAX_VALUES = 1_000_000
MAX_DEPTH = 40

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_scalars = yaml.constructor.SafeConstructor()
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooLarge(Exception):
    pass


class SourceMap:
    """Path → location of the value there; a path not recorded falls back to its parent."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._places: dict[Path, Location] = {}

    def record(self, path: Path, line: int, column: int) -> None:
        self._places[path] = Location(self.file, line, column)

    def locate(self, path: Path) -> Location:
        for end in range(len(path), -1, -1):
            place = self._places.get(path[:end])
            if place is not None:
                return place
        return Location(self.file, 1, 1)


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap, list[Problem]]:
    """Parse ``text``; returns the data, where each value came from, and what went wrong."""
    source = SourceMap(file)
    try:
        too_deep = _too_deep(text)
        if too_deep is not None:
            where = Location(file, too_deep.line + 1, too_deep.column + 1)
            return None, source, [Problem(where, "", f"nested more than {MAX_DEPTH} levels deep")]
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "not valid YAML"
        return None, source, [Problem(Location(file, line, column), "", f"YAML syntax: {what}")]
    except yaml.YAMLError as exc:
        return None, source, [Problem(Location(file, 1, 1), "", f"YAML: {exc}")]
    except RecursionError:
        return None, source, [Problem(Location(file, 1, 1), "", "YAML nested too deeply")]
    if node is None:
        return None, source, [Problem(Location(file, 1, 1), "", "the manifest is empty")]
    problems: list[Problem] = []
    converter = _Converter(source, problems)
    try:
        # Sized first, counting each alias as often as it is used: a billion-laughs file is
        # refused after visiting its few dozen distinct nodes, not a million copies.
        # Without a '*' there is no alias, and nothing to expand.
        if "*" in text and _expanded_size(node, {}) > MAX_VALUES:
            raise _TooLarge
        data = converter.convert(node, ())
    except _TooLarge:
        where = Location(file, node.start_mark.line + 1, node.start_mark.column + 1)
        return (
            None,
            source,
            [
                Problem(
                    where,
                    "",
                    f"expands to more than {MAX_VALUES:,} values"
                    " (an alias bomb?); refusing to read further",
                )
            ],
        )
    return data, source, problems


def _too_deep(text: str) -> yaml.Mark | None:
    """Where the nesting first goes past MAX_DEPTH, found from the parser's event stream.

    libyaml's composer recurses in C: ten thousand ``[`` crash the interpreter with a
    segmentation fault before any Python check could run. The event stream is flat, so
    it is walked first (about a tenth of the composing time).
    """
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return event.start_mark
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _expanded_size(node: yaml.Node, memo: dict[int, int], depth: int = 0) -> int:
    known = memo.get(id(node))
    if known is not None:
        return known
    if depth > MAX_DEPTH * 4:
        return 1  # the converter reports the nesting itself
    size = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, memo, depth + 1) + _expanded_size(value, memo, depth + 1)
            if size > MAX_VALUES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo, depth + 1)
            if size > MAX_VALUES:
                break
    memo[id(node)] = size
    return size


class _Converter:
    def __init__(self, source: SourceMap, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        self.count = 0

    def convert(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooLarge
        self.source.record(path, node.start_mark.line + 1, node.start_mark.column + 1)
        if len(path) > MAX_DEPTH:
            self._problem(node, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        try:
            return _scalars.construct_object(node, deep=True)
        except (yaml.constructor.ConstructorError, ValueError, OverflowError):
            self._problem(node, path, f"cannot read the value as {node.tag.rsplit(':', 1)[-1]}")
            return None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in self._merged(node, path):
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, path, "a key must be plain text")
                continue
            key = str(key_node.value)
            if key in seen:
                first = seen[key].start_mark.line + 1
                self._problem(key_node, (*path, key), f"duplicate key (first at line {first})")
                continue
            seen[key] = key_node
            result[key] = self.convert(value_node, (*path, key))
        return result

    def _merged(self, node: yaml.MappingNode, path: Path) -> list[tuple[yaml.Node, yaml.Node]]:
        """The pairs of a mapping with YAML merge keys (``<<: *base``) spliced in."""
        if all(key.tag != _MERGE_TAG for key, _ in node.value):
            return node.value
        own: list[tuple[yaml.Node, yaml.Node]] = []
        inherited: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node))
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    inherited.extend(self._merged(source, path))
                else:
                    self._problem(key_node, path, "'<<' must merge a mapping")
        own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        kept, names = [], set()
        for key_node, value_node in inherited:
            name = getattr(key_node, "value", None)
            if name in own_keys or name in names:
                continue
            names.add(name)
            kept.append((key_node, value_node))
        return kept + own

    def _problem(self, node: yaml.Node, path: Path, message: str) -> None:
        where = Location(self.source.file, node.start_mark.line + 1, node.start_mark.column + 1)
        self.problems.append(Problem(where, format_path(path), message))
