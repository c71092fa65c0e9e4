"""YAML to plain Python values, remembering the file, line and column of every value.

PyYAML's constructed objects forget where they came from. So the manifest is read from
libyaml's *event stream* and built here by hand, one pass, keeping each value's position.
That also lets us refuse what ``yaml.safe_load`` silently accepts — duplicate keys (the
last one would win), alias bombs (a few lines that expand to billions of values), absurd
nesting (libyaml's own composer recurses in C and crashes the interpreter on ten thousand
``[``) — and it is about twice as fast as composing a node tree and converting it.
Anchors, aliases and ``<<`` merge keys work as in YAML 1.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from bulkpolyv.manifest.problems import Location, Path, Problem, format_path

MAX_VALUES = 1_000_000
MAX_DEPTH = 40

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_resolver = yaml.resolver.Resolver()
_scalars = yaml.constructor.SafeConstructor()
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Plain scalars whose first character no implicit resolver looks at are strings: skipping
# the resolver's regular expressions for them is much of the speed of this module.
_RESOLVED_FIRST = frozenset(
    char for char in _resolver.yaml_implicit_resolvers if char is not None
) | {""}


class SourceMap:
    """Path → where the value there starts, and where its key is; a path not recorded falls
    back to its parent."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._places: dict[Path, tuple[int, int]] = {}
        self._keys: dict[Path, tuple[int, int]] = {}

    def record(self, path: Path, line: int, column: int) -> None:
        self._places[path] = (line, column)

    def record_key(self, path: Path, line: int, column: int) -> None:
        self._keys[path] = (line, column)

    def locate(self, path: Path) -> Location:
        for end in range(len(path), -1, -1):
            place = self._places.get(path[:end])
            if place is not None:
                return Location(self.file, *place)
        return Location(self.file, 1, 1)

    def locate_key(self, path: Path) -> Location:
        """Where the key of the entry at ``path`` is written (an unknown key is reported
        there, not at its value, which may start on the next line)."""
        place = self._keys.get(path)
        return Location(self.file, *place) if place is not None else self.locate(path)


class _Stop(Exception):
    """Reading cannot go on; the problem has been recorded."""


@dataclass
class _Frame:
    path: Path
    value: Any  # the dict or list being filled
    size: int = 1  # values in it, aliases counted as often as they are used
    anchor: str | None = None
    key: Any = None  # a mapping's pending key
    key_mark: Any = None
    has_key: bool = False  # False: the next scalar is a key
    bad_key: bool = False  # the pending entry is read but dropped
    key_lines: dict[str, int] = field(default_factory=dict)
    merges: list[Any] = field(default_factory=list)


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap, list[Problem]]:
    """Parse ``text``; returns the data, where each value came from, and what went wrong."""
    builder = _Builder(file)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "not valid YAML"
        problem = Problem(Location(file, line, column), "", f"YAML syntax: {what}")
        return None, builder.source, [problem]
    except yaml.YAMLError as exc:
        return None, builder.source, [Problem(Location(file, 1, 1), "", f"YAML: {exc}")]
    except _Stop:
        return None, builder.source, builder.problems
    if not builder.documents:
        return None, builder.source, [Problem(Location(file, 1, 1), "", "the manifest is empty")]
    return builder.result, builder.source, builder.problems


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.source = SourceMap(file)
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # name → (value, expanded size)
        self.result: Any = None
        self.documents = 0
        self.total = 0

    # --- events ---------------------------------------------------------------------------

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self._scalar(event)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._open(event)
        elif isinstance(event, yaml.CollectionEndEvent):
            self._close()
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self._fail(event.start_mark, (), "more than one YAML document ('---')")

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.value, dict) and not frame.has_key:
            self._take_key(frame, event)
            return
        path = self._child_path()
        value = self._construct(event, path)
        self._deliver(value, 1, event.start_mark, path, event.anchor, counted=1)

    def _open(self, event: yaml.CollectionStartEvent) -> None:
        parent = self.stack[-1] if self.stack else None
        if parent is not None and isinstance(parent.value, dict) and not parent.has_key:
            # A mapping or list used as a key: read it, then drop the entry.
            self._problem(event.start_mark, parent.path, "a key must be plain text")
            parent.has_key, parent.bad_key, parent.key_mark = True, True, event.start_mark
        path = self._child_path()
        if len(self.stack) >= MAX_DEPTH:
            self._fail(event.start_mark, (), f"nested more than {MAX_DEPTH} levels deep")
        self._count(1)
        self._record(path, event.start_mark)
        container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
        self.stack.append(_Frame(path, container, anchor=event.anchor))

    def _close(self) -> None:
        frame = self.stack.pop()
        if isinstance(frame.value, dict) and frame.merges:
            for source in frame.merges:
                for key, value in source.items():
                    frame.value.setdefault(key, value)
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (frame.value, frame.size)
        self._deliver(frame.value, frame.size, None, frame.path, None, counted=0)

    def _alias(self, event: yaml.AliasEvent) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.value, dict) and not frame.has_key:
            self._problem(event.start_mark, frame.path, "a key must be plain text")
            frame.has_key, frame.bad_key, frame.key_mark = True, True, event.start_mark
            return
        anchored = self.anchors.get(event.anchor)
        path = self._child_path()
        if anchored is None:
            self._fail(event.start_mark, path, f"alias *{event.anchor} has no anchor before it")
        value, size = anchored  # type: ignore[misc]
        self._deliver(value, size, event.start_mark, path, None, counted=size)

    # --- building -------------------------------------------------------------------------

    def _take_key(self, frame: _Frame, event: yaml.ScalarEvent) -> None:
        frame.has_key, frame.key_mark, frame.bad_key = True, event.start_mark, False
        key = event.value
        if _tag(event) == _MERGE_TAG:
            frame.key = _MERGE_TAG
            return
        line = frame.key_lines.get(key)
        if line is not None:
            self._problem(
                event.start_mark, (*frame.path, key), f"duplicate key (first at line {line})"
            )
            frame.bad_key = True
        else:
            frame.key_lines[key] = event.start_mark.line + 1
            mark = event.start_mark
            self.source.record_key((*frame.path, key), mark.line + 1, mark.column + 1)
        frame.key = key

    def _child_path(self) -> Path:
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if isinstance(frame.value, list):
            return (*frame.path, len(frame.value))
        if frame.bad_key:
            return (*frame.path, "\0dropped")  # read, never kept; not the parent's place
        if frame.key == _MERGE_TAG:
            return (*frame.path, "<<")
        return (*frame.path, frame.key)

    def _deliver(
        self, value: Any, size: int, mark: Any, path: Path, anchor: str | None, counted: int
    ) -> None:
        """Put a finished value into its parent. ``size`` is how many values it stands for;
        ``counted`` how many of them are new to the running total (a closed collection's
        were counted as they came)."""
        self._count(counted)
        if mark is not None:
            self._record(path, mark)
        if anchor is not None:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.result = value
            return
        frame = self.stack[-1]
        frame.size += size
        if isinstance(frame.value, list):
            frame.value.append(value)
            return
        frame.has_key = False
        if frame.bad_key:
            return
        if frame.key == _MERGE_TAG:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(source, dict) for source in sources):
                self._problem(frame.key_mark, frame.path, "'<<' must merge a mapping")
                return
            frame.merges.extend(sources)
            return
        frame.value[frame.key] = value

    def _count(self, values: int) -> None:
        self.total += values
        if self.total > MAX_VALUES:
            self._fail(
                None,
                (),
                f"expands to more than {MAX_VALUES:,} values (an alias bomb?);"
                " refusing to read further",
            )

    def _construct(self, event: yaml.ScalarEvent, path: Path) -> Any:
        tag = _tag(event)
        if tag == _STR_TAG:
            return event.value
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return _scalars.construct_object(node, deep=True)
        except (yaml.constructor.ConstructorError, ValueError, OverflowError):
            self._problem(
                event.start_mark, path, f"cannot read the value as {tag.rsplit(':', 1)[-1]}"
            )
            return None

    # --- places and problems --------------------------------------------------------------

    def _record(self, path: Path, mark: Any) -> None:
        self.source.record(path, mark.line + 1, mark.column + 1)

    def _problem(self, mark: Any, path: Path, message: str) -> None:
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        self.problems.append(Problem(Location(self.file, line, column), format_path(path), message))

    def _fail(self, mark: Any, path: Path, message: str) -> None:
        self._problem(mark, path, message)
        raise _Stop


def _tag(event: yaml.ScalarEvent) -> str:
    """The resolved tag of a scalar, as PyYAML's SafeLoader would give it."""
    if event.tag not in (None, "!"):
        return event.tag
    plain, _quoted = event.implicit
    if not plain or event.tag == "!":
        return _STR_TAG  # quoted, or explicitly non-specific
    value = event.value
    if (value[:1] if value else "") not in _RESOLVED_FIRST:
        return _STR_TAG
    return _resolver.resolve(yaml.ScalarNode, value, event.implicit)
