"""Every settings file goes through the one validator: config.toml with its [llm] section,
mcp.toml and policy.toml. A bad value is one line naming the file and the key, exit 1,
whichever command reads the file; files in the documented formats keep loading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.errors import ConfigError, PolicyError
from magray.llm.config import parse_llm_config
from magray.tools.mcp_config import load_servers
from magray.tools.policy_file import read_policy_file

GOOD_CONFIG = """
[search]
mode = "keyword"

[llm]
default = "work"
fallback = ["local"]
daily_token_budget = 200000
daily_cost_budget_usd = 2

[llm.providers.work]
type = "openai"
model = "gpt-4o-mini"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "WORK_KEY"
timeout = 30
max_tokens = 512
temperature = 0.2
max_retries = 3
context_window = 8192
price_per_1k_prompt = 0.15
price_per_1k_completion = 0.6

[llm.providers.mine]
type = "local"
model_path = "~/models/mine.gguf"
threads = 4
n_ctx = 4096
"""

GOOD_MCP = """
[servers.demo]
command = ["python", "server.py"]
timeout = 30

[servers.remote]
url = "http://127.0.0.1:8000/mcp"
"""

GOOD_POLICY = """
builtin_exceptions = ["git-metadata"]

[[rules]]
tool = "shell_exec"
action = "allow"
command = "git status"

[[rules]]
tool = "file_*"
action = "deny"
path = "secrets/**"

[[rules]]
tool = "web_fetch"
action = "ask"
host = "*.Example.com"
"""


def test_documented_files_load_into_typed_values(magray_home: Path) -> None:
    (magray_home / "config.toml").write_text(GOOD_CONFIG)
    (magray_home / "mcp.toml").write_text(GOOD_MCP)
    (magray_home / "policy.toml").write_text(GOOD_POLICY)
    import tomllib

    llm = parse_llm_config(tomllib.loads(GOOD_CONFIG)["llm"])
    work = llm.get("work")
    assert (llm.default, llm.fallback, llm.daily_cost_budget_usd) == ("work", ("local",), 2.0)
    assert (work.timeout, work.max_tokens, work.temperature, work.max_retries) == (
        30.0,
        512,
        0.2,
        3,
    )
    mine = llm.get("mine")
    assert mine.timeout == 300.0 and mine.model_path == Path("~/models/mine.gguf").expanduser()
    servers = load_servers(magray_home / "mcp.toml")
    assert servers["demo"].command == ("python", "server.py") and servers["demo"].timeout == 30.0
    assert servers["remote"].url == "http://127.0.0.1:8000/mcp"
    assert servers["remote"].timeout == 30.0
    policy = read_policy_file(magray_home / "policy.toml")
    assert [r.describe() for r in policy.rules] == [
        "allow shell_exec command='git status'",
        "deny file_* path='secrets/**'",
        "ask web_fetch host='*.example.com'",
    ]
    assert policy.disabled_builtins == frozenset({"git-metadata"})

    checked = CliRunner().invoke(app, ["config", "check", "--json"])
    assert checked.exit_code == 0, checked.output
    files = json.loads(checked.stdout)["files"]
    assert [Path(f["file"]).name for f in files] == ["config.toml", "mcp.toml", "policy.toml"]
    assert all(f["exists"] for f in files)
    shown = json.loads(CliRunner().invoke(app, ["config", "show", "--json"]).stdout)
    rows = {r["key"]: r["value"] for r in shown["settings"]}
    assert rows["llm.daily_token_budget"] == 200000
    assert rows["llm.daily_cost_budget_usd"] == 2.0
    assert rows["llm.providers"] == ["local", "mine", "work"]
    assert rows["mcp.servers"] == ["demo", "remote"]
    assert rows["policy.rules"] == 3


def test_config_check_with_no_files_says_defaults(magray_home: Path) -> None:
    result = CliRunner().invoke(app, ["config", "check"])
    assert result.exit_code == 0
    assert result.stdout.count("(absent: defaults)") == 3


BAD = [
    # (file, content, the one line expected, another command that reads the file)
    (
        "config.toml",
        '[llm.providers.x]\ntype = "openai"\ntimeout = 0\n',
        "config.toml: llm.providers.x.timeout must be > 0 (got 0.0).",
        ["llm", "list"],
    ),
    (
        "config.toml",
        '[llm]\ndaily_token_budget = "lots"\n',
        "config.toml: llm.daily_token_budget must be a whole number (got 'lots').",
        ["llm", "list"],
    ),
    (
        "config.toml",
        '[llm.providers.x]\ntype = "openai"\napi_key = "k"\n',
        "config.toml: unknown setting 'llm.providers.x.api_key'; did you mean"
        " llm.providers.x.api_key_env? see docs/llm.md for the [llm] settings.",
        ["llm", "list"],
    ),
    (
        "mcp.toml",
        '[servers.demo]\ncommand = ["x"]\ntimeout = -1\n',
        "mcp.toml: servers.demo.timeout must be > 0 (got -1.0).",
        ["mcp", "list"],
    ),
    (
        "mcp.toml",
        '[servers.demo]\ncommand = "python server.py"\n',
        "mcp.toml: servers.demo.command must be a list of text (got 'python server.py').",
        ["mcp", "list"],
    ),
    (
        "mcp.toml",
        '[servers.demo]\ncomand = ["x"]\n',
        "mcp.toml: unknown setting 'servers.demo.comand'; did you mean servers.demo.command?"
        " see docs/mcp.md.",
        ["mcp", "list"],
    ),
    (
        "policy.toml",
        '[[rules]]\ntool = "file_read"\ndecision = "allow"\n',
        "policy.toml: unknown setting 'rules[1].decision'; rules[1] takes tool, action, path,"
        " command, host; see docs/tools.md for policy.toml.",
        ["policy", "show"],
    ),
    (
        "mcp.toml",
        '[servers.demo]\ncommand = ["x"]\nurl = "http://h/mcp"\n',
        "mcp.toml: servers.demo needs either command (a stdio server) or url (an HTTP server)"
        " (both are set); keep one.",
        ["mcp", "list"],
    ),
    (
        "policy.toml",
        "[[rules]]\ntool = 'x'\naction = 'allow'\n[[rules]]\ntool = 'y'\naction = 'maybe'\n",
        "policy.toml: rules[2].action must be one of allow, ask, deny (got 'maybe').",
        ["policy", "show"],
    ),
    (
        "policy.toml",
        "[[rules]]\naction = 'deny'\n",
        "policy.toml: rules[1].tool is missing; add it (a tool name or glob, e.g. shell_exec"
        " or git_*).",
        ["policy", "show"],
    ),
    (
        "policy.toml",
        "builtin_denies = 0\n",
        "policy.toml: builtin_denies must be true or false (got 0).",
        ["policy", "show"],
    ),
    (
        "policy.toml",
        "[[rules]]\ntool = 'x'\naction = 'deny'\npath = 'a'\ncommand = 'b'\n",
        "policy.toml: rules[1]: a rule takes one of --path, --command or --host, not both;"
        " add separate rules.",
        ["policy", "show"],
    ),
]


@pytest.mark.parametrize(("name", "content", "line", "other"), BAD)
def test_a_bad_value_is_one_line_naming_file_and_key_and_exit_1(
    magray_home: Path, name: str, content: str, line: str, other: list[str]
) -> None:
    (magray_home / name).write_text(content)
    runner = CliRunner()
    for args in (["config", "check"], ["config", "show"], other):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        err = " ".join(result.stderr.split())
        assert str(magray_home / name) in err, (args, err)
        assert line in err, (args, err)
        assert "Traceback" not in result.output


def test_a_bad_value_through_the_real_command(magray_home: Path) -> None:
    (magray_home / "policy.toml").write_text("[[rules]]\ntool = 'x'\naction = 'perhaps'\n")
    done = subprocess.run(
        [sys.executable, "-m", "magray", "config", "check"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "rules[1].action must be one of allow, ask, deny (got 'perhaps')" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_errors_keep_their_kinds(tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text("rules = 3\n")
    with pytest.raises(PolicyError, match="rules must be a list of"):
        read_policy_file(bad)
    bad = tmp_path / "mcp.toml"
    bad.write_text("servers = 3\n")
    with pytest.raises(ConfigError, match="servers must be a table of"):
        load_servers(bad)


def test_config_set_writes_the_llm_budgets_checked(magray_home: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "set", "llm.daily_token_budget", "5000"])
    assert ok.exit_code == 0, ok.output
    got = runner.invoke(app, ["config", "get", "llm.daily_token_budget", "--json"])
    assert json.loads(got.stdout)["value"] == 5000
    bad = runner.invoke(app, ["config", "set", "llm.daily_cost_budget_usd", "nan"])
    assert bad.exit_code == 1
    assert "config set: llm.daily_cost_budget_usd must be a finite number" in bad.stderr
    assert "daily_cost_budget_usd" not in (magray_home / "config.toml").read_text()
    assert runner.invoke(app, ["config", "unset", "llm.daily_token_budget"]).exit_code == 0
    assert "llm" not in (magray_home / "config.toml").read_text()
