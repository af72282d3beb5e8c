"""The ``magray`` command: the table of every command, loaded lazily for a fast --help."""

from __future__ import annotations

import typer

from magray import __version__
from magray.cli.app import configure_logging
from magray.cli.lazy import LazyCommand, LazyGroup

# Name, where it lives, and the first sentence of its help (what `magray --help` lists;
# tests/cli/test_lazy_cli.py keeps it equal to the command's own help). Listed in this order.
COMMANDS = (
    LazyCommand(
        "ingest",
        "magray.cli.ingest:ingest",
        "Ingest files and folders into memory (respects .gitignore; incremental by content hash).",
    ),
    LazyCommand(
        "import",
        "magray.cli.conversations:import_conversations",
        "Import a chat history: one memory per turn (or exchange) with speaker, session and time.",
    ),
    LazyCommand(
        "ask",
        "magray.cli.ask:ask",
        "Answer a question, grounded in memory, streaming as it is generated.",
    ),
    LazyCommand(
        "chat",
        "magray.cli.chat:chat",
        "Chat with MAGRAY: answers stream, grounded in memory, and it can act; /help for commands.",
    ),
    LazyCommand(
        "logs",
        "magray.cli.ask:logs",
        "Show recent exchanges: question, answer, provider, tokens, latency, cited memories.",
    ),
    LazyCommand(
        "run",
        "magray.cli.run:run",
        "Do a task with the agent: plan, approve, run the steps under the policy, check, re-plan.",
    ),
    LazyCommand(
        "backup",
        "magray.cli.home:backup",
        "Back up the whole home: memory, tasks, conversations, usage, audit, settings, policy.",
    ),
    LazyCommand(
        "restore",
        "magray.cli.home:restore",
        "Restore a whole-home backup, verified before anything changes.",
    ),
    LazyCommand(
        "forget",
        "magray.cli.sources:forget",
        "Forget ingested files (--source) or a whole project (--project), asking first.",
    ),
    LazyCommand(
        "serve",
        "magray.cli.serve:serve",
        "Serve MAGRAY's API (OpenAPI at /openapi.json, docs at /docs) until Ctrl-C.",
    ),
    LazyCommand(
        "ui",
        "magray.cli.ui:ui",
        "Open the web dashboard (served by `magray serve` at /ui) in the default browser.",
    ),
    LazyCommand(
        "health",
        "magray.cli.health:health",
        "Store open, indexes consistent, embedding model loaded, default provider usable.",
    ),
    LazyCommand(
        "memory",
        "magray.cli.memory:app",
        "Remember, recall and maintain the three-layer memory.",
    ),
    LazyCommand(
        "models",
        "magray.cli.models:app",
        "Models: embedders, rerankers and local LLMs (list, info, install, add, remove).",
    ),
    LazyCommand(
        "config",
        "magray.cli.config_cmd:app",
        "Show and change settings (config.toml, MAGRAY_* environment, flags).",
    ),
    LazyCommand(
        "bench",
        "magray.cli.bench:app",
        "Benchmarks on this machine: memory recall, embedding speed, retrieval quality, the local"
        " LLM and the agent's planner.",
    ),
    LazyCommand("llm", "magray.cli.llm:app", "LLM providers: list, test, usage."),
    LazyCommand(
        "keys",
        "magray.cli.keys:app",
        "API keys of LLM providers: set, list, remove (stored with mode 0600).",
    ),
    LazyCommand(
        "tools",
        "magray.cli.tools:app",
        "The agent's tools: list them, or run one under the permission policy.",
    ),
    LazyCommand(
        "policy",
        "magray.cli.policy:app",
        "The permission policy for tools: show, allow, ask, deny, remove, reset (deny always"
        " wins).",
    ),
    LazyCommand(
        "tasks",
        "magray.cli.tasks:app",
        "Plan work as a graph of tasks with priorities and dependencies.",
    ),
    LazyCommand(
        "mcp",
        "magray.cli.mcp:app",
        "MCP servers: their tools join the agent's, under the permission policy.",
    ),
    LazyCommand(
        "sources",
        "magray.cli.sources:app",
        "What `magray ingest` stored: the files and their chunks.",
    ),
    LazyCommand("auth", "magray.cli.auth:app", "API keys of `magray serve`: create, list, revoke."),
    LazyCommand(
        "audit",
        "magray.cli.audit:app",
        "The tamper-evident audit log: list entries, verify the chain.",
    ),
)


class RootGroup(LazyGroup):
    """``magray``: every command of :data:`COMMANDS`, imported when it runs."""

    lazy = COMMANDS


app = typer.Typer(
    cls=RootGroup,
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="magray")
