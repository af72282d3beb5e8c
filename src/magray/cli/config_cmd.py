"""`magray config show|get|set|unset`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from magray.cli.app import new_app

app = new_app("Show and change settings (config.toml, MAGRAY_* environment, flags).")

if TYPE_CHECKING:
    from magray.config import Settings


def file_rows(settings: Settings) -> list[dict[str, Any]]:
    """The settings kept outside the flat options, as ``config show`` rows: the ``[llm]``
    section, the MCP servers of ``mcp.toml`` and the rules of ``policy.toml`` (each row's
    source is the file it came from, or ``default`` when that file does not exist)."""
    from magray.llm.config import llm_rows, load_llm_config
    from magray.tools.mcp_config import load_servers, mcp_file
    from magray.tools.policy_file import load_disabled_builtins, load_rules, policy_file

    def source(path: Path) -> str:
        return str(path) if path.exists() else "default"

    mcp, policy = mcp_file(settings.paths.config_dir), policy_file(settings.paths.config_dir)
    return [
        *llm_rows(load_llm_config(settings)),
        {
            "key": "mcp.servers",
            "value": sorted(load_servers(mcp)),
            "source": source(mcp),
            "help": "MCP servers whose tools the agent may use (mcp.toml; `magray mcp list`).",
        },
        {
            "key": "policy.rules",
            "value": len(load_rules(policy)),
            "source": source(policy),
            "help": "Your allow/ask/deny rules for tools (policy.toml; `magray policy show`).",
        },
        {
            "key": "policy.disabled_builtins",
            "value": sorted(load_disabled_builtins(policy)),
            "source": source(policy),
            "help": "Built-in policy exceptions you turned off (policy.toml).",
        },
    ]


def _store_vector_dtype(settings: Settings) -> str | None:
    """The scalar type the store's vector index has under ``memory.vector_dtype`` (``auto``:
    the one it has, f16 for a new store; None when the store cannot be read)."""
    from magray.memory.vector_dtype import peek

    paths = settings.paths
    return peek(paths.memory_db, paths.index_dir, settings.memory.vector_dtype)


@app.command("show")
def show(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show every setting, its value and where it came from.

    memory.vector_dtype also shows the type the store's vector index has (JSON: its row's
    ``effective``), which ``auto`` leaves to the store.

    Example: magray config show --json
    """
    from magray.cli import render
    from magray.config import OPTIONS, load_settings, shown
    from magray.tools.mcp_config import mcp_file
    from magray.tools.policy_file import policy_file

    settings = load_settings()
    rows = [
        {
            "key": o.key,
            "value": shown(o.key, settings[o.key]),
            "source": settings.sources[o.key],
            "help": o.help,
        }
        for o in OPTIONS
    ]
    for row in rows:
        if row["key"] == "memory.vector_dtype" and settings.memory.backend == "sqlite":
            row["effective"] = _store_vector_dtype(settings)
    rows += file_rows(settings)
    paths = {
        "config_file": str(settings.paths.config_file),
        "mcp_file": str(mcp_file(settings.paths.config_dir)),
        "policy_file": str(policy_file(settings.paths.config_dir)),
        "data_dir": str(settings.paths.data_dir),
        "models_dir": str(settings.paths.models_dir),
        "logs_dir": str(settings.paths.logs_dir),
    }
    if json_out:
        typer.echo(json.dumps({"settings": rows, "paths": paths}, ensure_ascii=False))
        return
    render.config_table(rows, paths)


@app.command("check")
def check(json_out: bool = typer.Option(False, "--json", help="Print JSON: {files}.")) -> None:
    """Check every settings file: config.toml (its [llm] section too), the MAGRAY_*
    environment, mcp.toml and policy.toml.

    Prints each file checked; the first problem stops it with a one-line error naming the
    file and the key (exit 1).

    Example: magray config check
    """
    from magray.config import load_settings
    from magray.tools.mcp_config import mcp_file
    from magray.tools.policy_file import policy_file

    settings = load_settings()
    file_rows(settings)  # reads and checks [llm] (provider types too), mcp.toml, policy.toml
    config_dir = settings.paths.config_dir
    files = [
        {"file": str(path), "exists": path.exists()}
        for path in (settings.paths.config_file, mcp_file(config_dir), policy_file(config_dir))
    ]
    if json_out:
        typer.echo(json.dumps({"files": files}))
        return
    for row in files:
        typer.echo(f"ok  {row['file']}" + ("" if row["exists"] else "  (absent: defaults)"))


# Settings that name a model, and the kind of model each must be.
_MODEL_SETTINGS = {"embed.model": "embedder", "search.reranker": "reranker"}


def _check_model(key: str, name: str, models_dir: Path) -> None:
    """A model setting must name a known model of its kind: a typo would otherwise break
    every memory command until it is fixed."""
    from magray.embed.registry import model_spec
    from magray.errors import ConfigError

    spec = model_spec(name, models_dir)  # NotFoundError lists the known models
    kind = _MODEL_SETTINGS[key]
    if spec.kind != kind:
        article = "an" if kind[0] in "aeiou" else "a"
        raise ConfigError(
            f"config set: {spec.name} is not {article} {kind}, so it cannot be {key}; see"
            " `magray models list`."
        )


# Settings that must agree: the PostgreSQL backend needs a connection string.
_BACKEND_SETTINGS = ("memory.backend", "memory.dsn")


def _check_backend(key: str, value: Any) -> None:
    """Refuse a change of ``key`` to ``value`` (as config.toml would hold it) that would
    leave ``memory.backend = "postgres"`` without a ``memory.dsn``: every memory command
    would then fail until it is fixed."""
    import os

    from magray.config import env_var, load_settings
    from magray.errors import ConfigError

    # the value as config.toml would hold it, unless the environment keeps its own anyway
    after = load_settings({key: value}) if env_var(key) not in os.environ else load_settings()
    if after.memory.backend != "postgres" or after.memory.dsn.strip():
        return
    if key == "memory.backend":
        raise ConfigError(
            "config set: memory.backend postgres needs memory.dsn, which is empty; run `magray"
            " config set memory.dsn postgresql://user@host/magray` first (or set"
            " MAGRAY_MEMORY_DSN); nothing was written."
        )
    raise ConfigError(
        "config: memory.dsn cannot be emptied while memory.backend is postgres; run `magray"
        " config set memory.backend sqlite` first; nothing was written."
    )


@app.command("set")
def set_(
    key: str = typer.Argument(..., help="Dotted key, e.g. memory.vector_dtype."),
    value: str = typer.Argument(..., help="New value."),
) -> None:
    """Validate and store a setting in config.toml.

    A key or value it refuses (a bad number, a choice not in the list, a folder or model
    that does not exist) is a config error, exit 1, for every key; nothing is written.
    Exit 2 is left to the command line itself (a missing argument, an unknown option).

    Example: magray config set search.mode keyword
    """
    from magray.errors import ConfigError, NotFoundError, UnknownProviderError, UsageError

    try:
        _set(key, value)
    except (UsageError, NotFoundError, UnknownProviderError) as exc:
        # the checks share code with options and lookups (`--root`, a model name) that
        # raise these; here each is a value config.toml must not hold: one exit code
        raise ConfigError(*exc.parts) from None


def _set(key: str, value: str) -> None:
    from magray.config import write_setting
    from magray.llm.config import LLM_SETTINGS, write_llm_setting
    from magray.paths import resolve_paths

    paths = resolve_paths()
    path = paths.config_file
    if key in _MODEL_SETTINGS:
        _check_model(key, value, paths.models_dir)
    if key in _BACKEND_SETTINGS:
        from magray.config import coerce, option

        _check_backend(key, coerce(option(key), value, "config set", key))
    if key == "tools.roots":
        from magray.config.sections import ToolsSettings
        from magray.runtime import check_root

        for root in ToolsSettings(roots=value).root_paths:
            check_root(root, "config set: tools.roots")
    if key in LLM_SETTINGS:
        stored = write_llm_setting(path, key, value)
    else:
        stored = write_setting(path, key, value)
    typer.echo(f"{key} = {stored!r} written to {path}", err=True)
    if key in (*_MODEL_SETTINGS, "search.rerank"):
        _warn_not_installed(key)


def _warn_not_installed(key: str) -> None:
    """Warn when the change makes searches need a model that is not installed yet (every
    memory command would fail until it is); the setting stays, for an install that follows."""
    from magray.cli import render
    from magray.config import load_settings
    from magray.embed.install import is_installed
    from magray.embed.registry import model_spec
    from magray.errors import MagrayError

    try:
        current = load_settings()
        if key == "embed.model":
            name, needed = current.embed.model, "memory commands"
        elif current.search.rerank:
            name, needed = current.search.reranker, "searches (search.rerank is on)"
        else:
            return
        spec = model_spec(name, current.paths.models_dir)
    except MagrayError:
        return  # the command that reads the settings says what is wrong
    if not is_installed(spec, current.paths.models_dir):
        render.warn(
            f"{spec.name} is not installed yet, so {needed} fail until you run `magray models"
            f" install {spec.name}`."
        )


@app.command("get")
def get(
    key: str = typer.Argument(..., help="Dotted key, e.g. search.mode."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print one setting's value (and, with --json, where it came from).

    Example: magray config get search.mode
    """
    from magray.config import load_settings, option, shown

    settings = load_settings()
    extra = {row["key"]: row for row in file_rows(settings)}
    if key in extra:
        value, source = extra[key]["value"], extra[key]["source"]
    else:
        option(key)
        value, source = shown(key, settings[key]), settings.sources[key]
    if isinstance(value, list):
        value = ",".join(value) if not json_out else value
    if json_out:
        typer.echo(json.dumps({"key": key, "value": value, "source": source}))
    else:
        typer.echo(str(value).lower() if isinstance(value, bool) else value)


@app.command("unset")
def unset(key: str = typer.Argument(..., help="Dotted key, e.g. search.mode.")) -> None:
    """Remove a setting from config.toml, so its default (or environment) applies again.

    Example: magray config unset search.mode
    """
    from magray.config import unset_setting
    from magray.llm.config import LLM_SETTINGS, write_llm_setting
    from magray.paths import resolve_paths

    path = resolve_paths().config_file
    if key in _BACKEND_SETTINGS:
        from magray.config import option

        _check_backend(key, option(key).default)
    if key in LLM_SETTINGS:
        write_llm_setting(path, key, None)
        typer.echo(f"{key} removed from {path}", err=True)
    elif unset_setting(path, key):
        typer.echo(f"{key} removed from {path}", err=True)
    else:
        typer.echo(f"{key} was not set in {path}; nothing to do", err=True)
