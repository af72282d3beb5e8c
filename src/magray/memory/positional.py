"""Positional constructors for the frozen, slotted values that every recall builds.

A frozen dataclass's ``__init__`` stores each field with ``object.__setattr__(self, "name",
value)``, which looks the slot up by name on every call: a ``Record`` (19 fields) costs about
2.6 µs that way, and a recall builds ten of them, plus a ``StoredRow`` and a ``Hit`` each.
``positional(cls)`` returns a constructor that stores through each slot's descriptor,
looked up once, in straight-line code like the ``__init__`` that ``dataclasses`` writes:
the same object (every field, ``==``, hash) for about half the cost of a ``Record``.

Only for ``@dataclass(frozen=True, slots=True)`` classes without ``__post_init__``, called
with every field in declaration order (no defaults are filled in).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def positional(cls: type[T]) -> Callable[..., T]:
    """A constructor of ``cls`` taking every field positionally, in declaration order."""
    if not dataclasses.is_dataclass(cls) or not hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} checks its fields in __post_init__: call it")
    names = [field.name for field in dataclasses.fields(cls)]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make({', '.join(names)}):", "    obj = _new(_cls)"]
    for i, name in enumerate(names):
        scope[f"_set{i}"] = cls.__dict__[name].__set__  # the slot's member descriptor
        lines.append(f"    _set{i}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), scope)  # names come from the class's own fields
    make: Callable[..., T] = scope["make"]
    make.__qualname__ = f"positional({cls.__qualname__})"
    return make
