"""The ``magray`` command: registers every command group. Imports stay light for fast --help."""

from __future__ import annotations

import typer

from magray import __version__
from magray.cli import (
    ask,
    audit,
    auth,
    bench,
    chat,
    config_cmd,
    conversations,
    health,
    home,
    ingest,
    keys,
    llm,
    mcp,
    memory,
    models,
    policy,
    run,
    serve,
    sources,
    tasks,
    tools,
    ui,
)
from magray.cli.app import MagrayGroup, configure_logging

app = typer.Typer(
    cls=MagrayGroup,
    help="MAGRAY: a local-first AI agent for the terminal that remembers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"magray {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show informational logs."),
) -> None:
    """MAGRAY: a local-first AI agent for the terminal that remembers."""
    configure_logging(verbose)


app.add_typer(memory.app, name="memory")
app.add_typer(models.app, name="models")
app.add_typer(config_cmd.app, name="config")
app.add_typer(bench.app, name="bench")
app.add_typer(llm.app, name="llm")
app.add_typer(keys.app, name="keys")
app.add_typer(tools.app, name="tools")
app.add_typer(policy.app, name="policy")
app.add_typer(tasks.app, name="tasks")
app.add_typer(mcp.app, name="mcp")
app.add_typer(sources.app, name="sources")
app.command("ingest")(ingest.ingest)
app.command("import")(conversations.import_conversations)
app.command("ask")(ask.ask)
app.command("chat")(chat.chat)
app.command("logs")(ask.logs)
app.command("run")(run.run)
app.command("backup")(home.backup)
app.command("restore")(home.restore)
app.command("forget")(sources.forget)
app.add_typer(auth.app, name="auth")
app.add_typer(audit.app, name="audit")
app.command("serve")(serve.serve)
app.command("ui")(ui.ui)
app.command("health")(health.health)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="magray")
