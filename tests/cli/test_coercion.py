"""Values converted without pydantic equal what typer's own adapter makes of them."""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import Any, Literal

import pytest
import typer
import typer.main
from typer._coercion import build_runtime_param

from magray.cli.coercion import FastRuntimeParam


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _command() -> Any:
    app = typer.Typer()

    @app.command()
    def cmd(
        text: str = typer.Option("x"),
        count: int = typer.Option(1),
        ranged: int = typer.Option(1, min=1, max=10),
        ratio: float = typer.Option(0.5),
        flag: bool = typer.Option(False),
        where: Path = typer.Option(Path()),
        color: Color = typer.Option(Color.RED),
        mode: Literal["a", "b"] = typer.Option("a"),
        tags: list[str] = typer.Option([]),
        numbers: list[int] = typer.Option([]),
    ) -> None: ...

    @app.command()
    def other() -> None: ...

    return typer.main.get_command(app).commands["cmd"]  # type: ignore[attr-defined]


VALUES: list[Any] = [
    "abc",
    "",
    "5",
    "-3",
    "0005",
    " 7",
    "1e3",
    "2.5",
    "-0.25",
    "nan",
    "inf",
    "99999999999999999999",
    "0",
    "11",
    "red",
    "RED",
    "blue",
    "green",
    "a",
    "b",
    "c",
    "true",
    "no",
    "x/y",
    ".",
    5,
    2.5,
    True,
    ["a", "b"],
    ["1", "x"],
    ("3", "4"),
]


def _outcome(runtime: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        result = runtime._coerce_value(value, param=param, ctx=ctx)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return type(result).__name__, repr(result)


@pytest.mark.parametrize(
    "name",
    ["text", "count", "ranged", "ratio", "flag", "where", "color", "mode", "tags", "numbers"],
)
def test_fast_conversion_matches_typer(name: str) -> None:
    command = _command()
    ctx = command.make_context("cmd", [])
    (param,) = [p for p in command.params if p.name == name]
    slow = build_runtime_param(param.type_descriptor)
    fast = FastRuntimeParam(param.type_descriptor)
    for value in VALUES:
        if name in ("tags", "numbers") and not isinstance(value, list | tuple):
            value = [value]
        if name == "where" and value == "":
            # deliberately not typer's Path('.'): an empty path argument is refused
            assert _outcome(fast, value, param, ctx) == (
                "UsageError",
                "--where is an empty path; give a file or folder ('.' for the current one),"
                " or leave it out for the default.",
            )
            continue
        expected = _outcome(slow, value, param, ctx)
        if _unusable(slow, value, param, ctx):
            # deliberately not typer's: no command can use NaN, infinity or 65-bit integers
            assert _outcome(fast, value, param, ctx)[0] == "UsageError", (name, value)
            continue
        assert _outcome(fast, value, param, ctx) == expected, (name, value)


def _unusable(runtime: Any, value: Any, param: Any, ctx: Any) -> bool:
    try:
        result = runtime._coerce_value(value, param=param, ctx=ctx)
    except Exception:
        return False
    items = result if isinstance(result, list | tuple) else [result]
    return any(
        (isinstance(x, float) and not math.isfinite(x))
        or (isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 2**63)
        for x in items
    )
