"""`magray config show|set|path`."""

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
    from magray.config import OPTIONS, load_settings

    settings = load_settings()
    rows = [
        {"key": o.key, "value": settings[o.key], "source": settings.sources[o.key], "help": o.help}
        for o in OPTIONS
    ]
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
    from magray.paths import resolve_paths

    path = resolve_paths().config_file
    stored = write_setting(path, key, value)
    typer.echo(f"{key} = {stored!r} written to {path}", err=True)
