"""`magray config show|get|set|unset`."""

from __future__ import annotations

import json

import typer

from magray.cli.app import new_app

app = new_app("Show and change settings (config.toml, MAGRAY_* environment, flags).")


@app.command("show")
def show(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show every setting, its value and where it came from.

    Example: magray config show --json
    """
    from magray.cli import render
    from magray.config import OPTIONS, load_settings, shown
    from magray.llm.config import llm_rows, load_llm_config

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
    rows += llm_rows(load_llm_config(settings))
    paths = {
        "config_file": str(settings.paths.config_file),
        "data_dir": str(settings.paths.data_dir),
        "models_dir": str(settings.paths.models_dir),
        "logs_dir": str(settings.paths.logs_dir),
    }
    if json_out:
        typer.echo(json.dumps({"settings": rows, "paths": paths}, ensure_ascii=False))
        return
    render.config_table(rows, paths)


@app.command("set")
def set_(
    key: str = typer.Argument(..., help="Dotted key, e.g. memory.vector_dtype."),
    value: str = typer.Argument(..., help="New value."),
) -> None:
    """Validate and store a setting in config.toml.

    Example: magray config set search.mode keyword
    """
    from magray.config import write_setting
    from magray.llm.config import LLM_SETTINGS, write_llm_setting
    from magray.paths import resolve_paths

    path = resolve_paths().config_file
    if key in LLM_SETTINGS:
        stored = write_llm_setting(path, key, value)
    else:
        stored = write_setting(path, key, value)
    typer.echo(f"{key} = {stored!r} written to {path}", err=True)


@app.command("get")
def get(
    key: str = typer.Argument(..., help="Dotted key, e.g. search.mode."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print one setting's value (and, with --json, where it came from).

    Example: magray config get search.mode
    """
    from magray.config import load_settings, option, shown
    from magray.llm.config import llm_rows, load_llm_config

    settings = load_settings()
    llm = {row["key"]: row for row in llm_rows(load_llm_config(settings))}
    if key in llm:
        value, source = llm[key]["value"], llm[key]["source"]
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
    if key in LLM_SETTINGS:
        write_llm_setting(path, key, None)
        typer.echo(f"{key} removed from {path}", err=True)
    elif unset_setting(path, key):
        typer.echo(f"{key} removed from {path}", err=True)
    else:
        typer.echo(f"{key} was not set in {path}; nothing to do", err=True)
