"""MCP tool arguments: errors name the bad argument and list what the tool takes."""

from __future__ import annotations

import pytest

from magray.errors import UsageError
from magray.tools.mcp import _check_schema

SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "note": {"type": "string"}},
    "required": ["a", "b"],
}


def _error(raw: dict[str, object], schema: dict[str, object] = SCHEMA) -> str:
    with pytest.raises(UsageError) as raised:
        _check_schema("mcp__demo__add", schema, raw)
    return raised.value.message


def test_missing_argument_is_named_and_the_parameters_listed() -> None:
    assert _error({"a": 1}) == (
        "mcp__demo__add: invalid arguments (missing argument 'b'); "
        "it takes a (required), b (required), note."
    )


def test_unknown_argument_is_named() -> None:
    assert _error({"a": 1, "b": 2, "c": 3}) == (
        "mcp__demo__add: invalid arguments (unknown argument 'c'); "
        "it takes a (required), b (required), note."
    )


def test_unknown_argument_passes_where_the_schema_allows_others() -> None:
    _check_schema("t", {**SCHEMA, "additionalProperties": True}, {"a": 1, "b": 2, "c": 3})


def test_no_parameters() -> None:
    assert _error({"x": 1}, {"type": "object", "properties": {}}) == (
        "mcp__demo__add: invalid arguments (unknown argument 'x'); it takes no arguments."
    )


def test_wrong_type_lists_the_parameters_too() -> None:
    pytest.importorskip("jsonschema")
    message = _error({"a": "one", "b": 2})
    assert message.startswith("mcp__demo__add: invalid arguments (a: 'one' is not of type")
    assert message.endswith("; it takes a (required), b (required), note.")


def test_valid_arguments_pass() -> None:
    _check_schema("mcp__demo__add", SCHEMA, {"a": 1, "b": 2})
