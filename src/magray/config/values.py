"""The one validator of settings: a raw value checked against its :class:`Option`.

Every value MAGRAY reads from a TOML file, the environment or ``config set`` passes through
:func:`coerce` (one value) or :func:`read_table` (one TOML table: unknown keys refused with
the closest known ones, required keys asked for, each value coerced). The messages are one
sentence that names where the value came from (the file, the variable, ``config set``) and
the full dotted key: ``/home/me/.config/magray/mcp.toml: servers.demo.timeout must be > 0
(got -1).``
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from magray.config.options import Option
from magray.errors import ConfigError, MagrayError

_KIND_NAMES: dict[type, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    list: "a list of text",
}


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _check_text(value: str, name: str) -> None:
    """A ConfigError for text that cannot be written as UTF-8 (bytes that were not UTF-8
    come in from a terminal or the environment as lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{name} is not UTF-8 text (got {value!r}); type it again in UTF-8."
        ) from None


def coerce(option: Option, raw: Any, where: str, key: str | None = None) -> Any:
    """``raw`` turned into the option's type and checked against its choices and range.

    ``where`` (the file, variable or command the value came from; may be empty) and ``key``
    (the full dotted key when it differs from ``option.key``) are named in the ConfigError.
    None stays None for an option whose default is None.
    """
    if raw is None and option.default is None and not option.required:
        return None
    name = key or option.key
    where = f"{where}: " if where else ""
    value: Any
    try:
        if option.kind is bool:
            if isinstance(raw, bool):
                value = raw
            elif isinstance(raw, str) and raw.strip().lower() in {"1", "true", "yes", "on"}:
                value = True
            elif isinstance(raw, str) and raw.strip().lower() in {"0", "false", "no", "off"}:
                value = False
            else:
                raise ValueError
        elif option.kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
            if not -(2**63) <= value < 2**63:
                raise ConfigError(
                    f"{where}{name} must be a whole number of at most 19 digits (got {raw!r})."
                )
        elif option.kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
            if not math.isfinite(value):
                raise ConfigError(f"{where}{name} must be a finite number (got {raw!r}).")
        elif option.kind is list:
            if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
                raise ValueError
            value = tuple(raw)
            for item in value:
                _check_text(item, f"{where}{name}")
        else:
            if not isinstance(raw, str):
                raise ValueError
            value = raw.strip()
            _check_text(value, f"{where}{name}")
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(
            f"{where}{name} must be {_KIND_NAMES[option.kind]} (got {raw!r})."
        ) from None
    if option.choices and value not in option.choices:
        raise ConfigError(
            f"{where}{name} must be one of {', '.join(option.choices)} (got {value!r})."
        )
    if option.minimum is not None and value < option.minimum:
        raise ConfigError(f"{where}{name} must be ≥ {option.minimum} (got {value!r}).")
    if option.maximum is not None and value > option.maximum:
        raise ConfigError(f"{where}{name} must be ≤ {option.maximum} (got {value!r}).")
    if option.above is not None and not value > option.above:
        raise ConfigError(f"{where}{name} must be > {_number(option.above)} (got {value!r}).")
    return value


def unknown_key(key: str, known: Iterable[str], see: str, prefix: str = "") -> str:
    """The one-line message for a mistyped ``key``, with the closest of ``known``.

    With a ``prefix`` (the table's dotted key) ``key`` and ``known`` are names inside that
    table: they are compared without it and shown with it.
    """
    import difflib

    def full(name: str) -> str:
        return f"{prefix}.{name}" if prefix else name

    names = list(known)
    close = difflib.get_close_matches(key, names, n=2, cutoff=0.6)
    hint = f" did you mean {' or '.join(full(c) for c in close)}?" if close else ""
    if not close and 0 < len(names) <= 8:  # a small table: name what it takes
        hint = f" {prefix or 'it'} takes {', '.join(names)};"
    return f"unknown setting {full(key)!r};{hint} {see}."


def read_table(
    table: Any,
    options: Sequence[Option],
    *,
    where: str,
    prefix: str,
    see: str,
    subtables: Collection[str] = (),
    error: type[MagrayError] = ConfigError,
) -> dict[str, Any]:
    """The values of the TOML ``table`` at dotted ``prefix``, by option key, each checked.

    Keys no option names are refused (``subtables`` are keys the caller reads itself), a
    missing key takes its option's default (a ``required`` one is refused), and every error
    is one ``error`` naming ``where`` and the full key; ``see`` says where the keys are
    documented.
    """

    def full(name: str) -> str:
        return f"{prefix}.{name}" if prefix else name

    if not isinstance(table, Mapping):
        raise error(f"{where}: {prefix} must be a table, not {type(table).__name__}; {see}.")
    by_key = {o.key: o for o in options}
    for name in table:
        if name not in by_key and name not in subtables:
            known = (*by_key, *subtables)
            raise error(f"{where}: {unknown_key(str(name), known, see, prefix)}")
    values: dict[str, Any] = {}
    for opt in options:
        if opt.key in table:
            try:
                values[opt.key] = coerce(opt, table[opt.key], where, full(opt.key))
            except ConfigError as exc:
                raise error(*exc.parts) from None
        elif opt.required:
            raise error(
                f"{where}: {full(opt.key)} is missing; add it ({opt.help[:1].lower()}"
                f"{opt.help[1:].rstrip('.')})."
            )
        else:
            values[opt.key] = opt.default
    return values
