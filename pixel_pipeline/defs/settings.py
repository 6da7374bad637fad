"""Dagster Configs <-> the pure settings they configure: one conversion, and one place for each default.

A Config field and the settings field (or function keyword) it feeds share a name, so the conversion passes every
shared name, and a Config field's default is read from the pure side (`Field(SomeSettings.knob, ...)`; a dataclass
field's class attribute is its default) instead of being written a second time.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _is_tuple_field(f: dataclasses.Field) -> bool:
    """Whether the dataclass field is annotated as a tuple (string annotations under `from __future__` too)."""
    if isinstance(f.type, str):
        return f.type.replace("typing.", "").lower().startswith("tuple")
    return f.type is tuple or typing.get_origin(f.type) is tuple


def settings_from(config: Any, settings_cls: type[T], **overrides: Any) -> T:
    """`settings_cls` built from every field it shares by name with the Config (a list becomes a tuple where the
    dataclass field is a tuple: the UI edits lists, frozen settings hold tuples); `overrides` win, for values the
    asset resolves at run time. Settings fields the Config lacks keep their own defaults."""
    config_fields = type(config).model_fields
    values = {}
    for f in dataclasses.fields(settings_cls):
        if f.name in overrides or f.name not in config_fields:
            continue
        value = getattr(config, f.name)
        values[f.name] = tuple(value) if isinstance(value, list) and _is_tuple_field(f) else value
    return settings_cls(**values, **overrides)


def keyword_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """A function's keyword defaults by name, for a Config whose pure side is a function, not a settings class."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}
