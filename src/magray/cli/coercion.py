"""Command-line values converted without pydantic for the common cases.

Typer converts every option through a pydantic ``TypeAdapter`` built on first use: importing
pydantic and building the adapters costs a listing command most of its start-up. Here a
value that is plainly a ``str``, an ``int`` or ``float`` in range, a ``Path``, one of an
enum's choices, or a list of those is converted directly, with the result typer's adapter
gives (tests/cli/test_coercion.py compares them); anything else, and every value typer
would reject, goes through typer's own adapter so its error messages stay the same.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from typer import core as typer_core
from typer._coercion import RuntimeParam, build_runtime_param
from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path

from magray.errors import UsageError

_SLOW = object()  # "let typer's adapter decide"
_INT = re.compile(r"-?[0-9]{1,18}")
_FLOAT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{0,15})?")


class FastRuntimeParam(RuntimeParam):
    """Converts plain values directly; defers to typer's adapter for everything else."""

    def __init__(self, descriptor: Any) -> None:
        super().__init__(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)
        object.__setattr__(self, "_descriptor", descriptor)
        object.__setattr__(self, "_slow", None)

    def _slow_param(self) -> RuntimeParam:
        slow: RuntimeParam | None = self.__dict__["_slow"]
        if slow is None:
            slow = build_runtime_param(self.__dict__["_descriptor"])
            object.__setattr__(self, "_slow", slow)
        return slow

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        annotation: Any = self.annotation
        if get_origin(annotation) is list:
            (item_type,) = get_args(annotation)
            items = value if isinstance(value, list | tuple) else [value]
            out = [self._leaf(item_type, item, param, ctx) for item in items]
            if all(item is not _SLOW for item in out):
                return out
        else:
            result = self._leaf(annotation, value, param, ctx)
            if result is not _SLOW:
                return result
        return _in_range(self._slow_param()._coerce_value(value, param=param, ctx=ctx), param)

    def _leaf(self, annotation: Any, value: Any, param: Any, ctx: Any) -> Any:
        info = self.parameter_info
        if info.parser is not None:
            return _SLOW
        if annotation is str:
            if not isinstance(value, str):
                return _SLOW
            _check_utf8(value, param)
            return value
        if annotation is int or annotation is float:
            return self._number(annotation, value)
        if annotation is bool:
            return value if isinstance(value, bool) else _SLOW
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            return self._choice(tuple(annotation), value, ctx)
        if get_origin(annotation) is Literal:
            return self._choice(get_args(annotation), value, ctx)
        if annotation is Path and routes_to_path(annotation, info):
            if isinstance(value, str) and not value.strip():
                # Path("") is the current folder: an empty argument must not mean "here"
                raise UsageError(_empty_path(param))
            if isinstance(value, str) and value and "\x00" not in value:
                value = Path(value)
            if not isinstance(value, Path):
                return _SLOW
            return coerce_cli_path(value, info, path_type=Path, param=param, ctx=ctx)
        return _SLOW

    def _number(self, annotation: type, value: Any) -> Any:
        info = self.parameter_info
        if info.clamp:
            return _SLOW
        if isinstance(value, str):
            pattern = _INT if annotation is int else _FLOAT
            if not pattern.fullmatch(value):
                return _SLOW
            number: Any = annotation(value)
        elif type(value) is annotation:
            number = value
        else:
            return _SLOW
        if (info.min is not None and number < info.min) or (
            info.max is not None and number > info.max
        ):
            return _SLOW
        return number

    def _choice(self, choices: tuple[Any, ...], value: Any, ctx: Any) -> Any:
        try:
            return coerce_cli_choice(
                value, choices=choices, case_sensitive=self.parameter_info.case_sensitive, ctx=ctx
            )
        except ValueError:
            return _SLOW


def _check_utf8(value: str, param: Any) -> None:
    """A UsageError for text that arrived as bytes that are not UTF-8 (lone surrogates).

    Such text cannot be stored (SQLite, TOML and JSON take UTF-8 only), so it is refused
    here, once, for every text option and argument.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{_name(param)} is not valid UTF-8; check the terminal's encoding."
        ) from None


def _in_range(value: Any, param: Any) -> Any:
    """``value`` unless it is a number no command can use: past 64 bits, NaN or infinite.

    The fast path takes only plain numbers; typer's adapter also takes ``nan``, ``inf`` and
    integers of any size, which SQLite and the core cannot store or compare.
    """
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if isinstance(item, bool):
            continue
        if isinstance(item, int) and not -(2**63) <= item < 2**63:
            raise UsageError(f"{_name(param)} {item} is out of range; give a smaller number.")
        if isinstance(item, float) and not math.isfinite(item):
            raise UsageError(f"{_name(param)} takes a finite number, not {item}.")
    return value


def _empty_path(param: Any) -> str:
    """One sentence for an empty path argument (refused, not read as the current folder)."""
    leave = "" if getattr(param, "required", True) else ", or leave it out for the default"
    return (
        f"{_name(param)} is an empty path; give a file or folder ('.' for the current one){leave}."
    )


def _name(param: Any) -> str:
    """How the user wrote the parameter: ``--source`` for an option, ``PATH`` for an argument."""
    opts = getattr(param, "opts", None) or []
    if getattr(param, "param_type_name", "") == "option" and opts:
        return str(max(opts, key=len))
    return str(getattr(param, "name", "the value") or "the value").upper()


def _get_runtime_param(self: Any) -> RuntimeParam:
    if self._runtime_param is None:
        descriptor = self.type_descriptor
        if descriptor.file_annotation is None:
            self._runtime_param = FastRuntimeParam(descriptor)
        else:
            self._runtime_param = build_runtime_param(descriptor)
    runtime: RuntimeParam = self._runtime_param
    return runtime


def install() -> None:
    """Make typer's parameters convert plain values without pydantic."""
    typer_core._TyperParameter.get_runtime_param = _get_runtime_param  # type: ignore[method-assign]
