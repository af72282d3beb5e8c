"""Settings files changed by several processes at once lose no change.

`config set`, `policy allow/deny/ask/remove`, `mcp add/remove` and `keys set/remove` read a
TOML file, change it and write it back; two processes doing that at once must both land.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.cli.test_errors_cli import _env
from tests.conftest import REPO

# Every process waits on this file before it starts, so they really run side by side.
_GO = """
import os, sys, time
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.001)
sys.argv = ["magray", *sys.argv[2:]]
from magray.cli.main import app
app()
"""


def _all_at_once(home: Path, commands: list[list[str]], stdin: bytes = b"") -> None:
    go = home / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _GO, str(go), *args],
            env=_env(home),
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for args in commands
    ]
    go.touch()
    failed = []
    for proc, args in zip(procs, commands, strict=True):
        with proc:
            _, err = proc.communicate(stdin, timeout=120)
        if proc.returncode != 0:
            failed.append((args, err.decode()))
    os.unlink(go)
    assert failed == []


def test_concurrent_config_set_keeps_every_setting(magray_home: Path) -> None:
    settings = {
        "search.rrf_k": "70",
        "search.mode": "keyword",
        "embed.batch_size": "16",
        "tools.timeout": "12",
        "llm.daily_token_budget": "1000",
        "memory.vector_dtype": "f16",
    }
    _all_at_once(magray_home, [["config", "set", k, v] for k, v in settings.items()])
    data = tomllib.loads((magray_home / "config.toml").read_text())
    stored = {f"{section}.{k}" for section, table in data.items() for k in table}
    assert stored == set(settings)


def test_concurrent_policy_rules_keep_every_rule(magray_home: Path) -> None:
    tools = ["file_read", "file_write", "file_delete", "git_log", "git_diff", "file_list"]
    _all_at_once(magray_home, [["policy", "deny", tool] for tool in tools])
    rules = tomllib.loads((magray_home / "policy.toml").read_text())["rules"]
    assert sorted(r["tool"] for r in rules) == sorted(tools)


def test_concurrent_mcp_add_keeps_every_server(magray_home: Path) -> None:
    names = [f"s{n}" for n in range(6)]
    _all_at_once(magray_home, [["mcp", "add", name, "--", "echo", name] for name in names])
    servers = tomllib.loads((magray_home / "mcp.toml").read_text())["servers"]
    assert sorted(servers) == names


def test_concurrent_keys_set_keeps_every_key(magray_home: Path) -> None:
    names = [f"provider{n}" for n in range(6)]
    _all_at_once(magray_home, [["keys", "set", name] for name in names], stdin=b"sk-test-1234\n")
    keys = tomllib.loads((magray_home / "keys.toml").read_text())
    assert sorted(keys) == names
