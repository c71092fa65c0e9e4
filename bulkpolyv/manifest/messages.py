"""Pydantic's validation errors turned into sentences for people, with hints for typos."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from bulkpolyv.manifest.model import ManifestSpec
from bulkpolyv.manifest.problems import Path

_MESSAGES = {
    "missing": "is required",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be text (put it in quotes)",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "may contain only letters, digits, '.', '_' and '-'",
}


def describe(error: Mapping[str, Any], loc: Path, csv_columns: Sequence[str] = ()) -> str:
    """A sentence for one pydantic error at ``loc`` (``("csv", column)`` for a CSV cell)."""
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(loc, csv_columns)
    if kind == "greater_than":
        gt = context.get("gt")
        return "must be a positive number" if gt == 0 else f"must be greater than {gt}"
    if kind == "less_than_equal":
        return f"must be at most {context.get('le')}"
    if kind == "too_short" and loc == ("accounts",):
        return "must list at least one account"
    if kind in ("value_error", "assertion_error"):
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"must be one of {context.get('expected')}"
    return _MESSAGES.get(kind, str(error["msg"]))


def _unknown_key(loc: Path, csv_columns: Sequence[str]) -> str:
    key = str(loc[-1])
    allowed = list(csv_columns) if loc[:1] == ("csv",) else _allowed_keys(loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = (
        f"; did you mean {close[0]!r}?"
        if close
        else (f"; expected one of: {', '.join(allowed)}" if allowed else "")
    )
    return f"unknown key {key!r}{hint}"


def _allowed_keys(loc: Path) -> list[str]:
    model: Any = ManifestSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        model = _model_in(info.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``list[X]``, ``X | None`` or ``Annotated[X, …]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
