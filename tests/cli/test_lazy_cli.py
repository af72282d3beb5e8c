"""The root group lists every command from its table and imports a module only to run it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from magray.cli.app import summary
from magray.cli.lazy import load_command
from magray.cli.main import COMMANDS, app

RUNNER = CliRunner()


def test_table_summaries_match_each_commands_own_help() -> None:
    for entry in COMMANDS:
        command = load_command(entry)
        assert command.name == entry.name
        assert entry.summary == summary(command.help), entry.name


def test_help_lists_every_command_in_table_order() -> None:
    result = RUNNER.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    listing = result.stdout.split("Commands:", 1)[1]
    names = [
        line.split()[0] for line in listing.splitlines() if line.startswith("  ") and line[2] != " "
    ]
    assert names == [entry.name for entry in COMMANDS]


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys\n"
        "from magray.cli.main import main\n"
        "sys.argv = ['magray', '--help']\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('magray.cli.')\n"
        "    and m not in ('magray.cli.main', 'magray.cli.app', 'magray.cli.lazy',"
        " 'magray.cli.coercion'))\n"
        "heavy = sorted(m for m in ('pydantic', 'rich', 'numpy') if m in sys.modules)\n"
        "print('LOADED', loaded, heavy, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED [] []" in out.stderr, out.stderr
    assert "memory" in out.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["tasks", "list", "--json"],
        ["llm", "list", "--json"],
        ["config", "show", "--json"],
        ["config", "check"],
        ["policy", "show", "--json"],
    ],
)
def test_a_listing_command_runs_without_pydantic(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from magray.cli.main import main\n"
        f"sys.argv = ['magray', *{argv!r}]\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('PYDANTIC', 'pydantic' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "PYDANTIC False" in out.stderr, out.stderr


def test_commands_and_groups_still_resolve() -> None:
    group = typer.main.get_command(app)
    result = RUNNER.invoke(app, ["memory", "--help"])
    assert result.exit_code == 0 and "search" in result.stdout
    result = RUNNER.invoke(app, ["nosuch"])
    assert result.exit_code == 2
    assert group.get_command(None, "ask") is not None  # type: ignore[arg-type]


def test_top_level_commands_offer_no_completion_options_of_their_own() -> None:
    # completion belongs to `magray` itself; `magray ingest --install-completion` is noise
    for entry in COMMANDS:
        shown = RUNNER.invoke(app, [entry.name, "--help"])
        assert shown.exit_code == 0, (entry.name, shown.output)
        assert "--install-completion" not in shown.stdout, entry.name
    assert "--install-completion" in RUNNER.invoke(app, ["--help"]).stdout
