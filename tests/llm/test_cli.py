"""`magray llm list|test|usage` and `magray keys set|list|remove` through typer's CliRunner."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from magray.cli.main import app

from .conftest import Reply, Scripted, oa_stream

KEY = "sk-secret-abcdefghijklmnop9876"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _config(home: Path, url: str, extra: str = "") -> None:
    (home / "config.toml").write_text(
        f'[llm]\ndefault = "oa"\nfallback = ["local"]\n{extra}\n[llm.providers.oa]\n'
        f'type = "openai"\nbase_url = "{url}/v1"\nmodel = "gpt-test"\n'
        'api_key_env = "MAGRAY_TEST_OA_KEY"\ntimeout = 5\nmax_retries = 0\n'
    )


def test_keys_set_list_remove_never_print_the_key(runner: CliRunner, magray_home: Path) -> None:
    done = runner.invoke(app, ["keys", "set", "oa"], input=KEY + "\n")
    assert done.exit_code == 0, done.output
    assert KEY not in done.output
    keys_file = magray_home / "keys.toml"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert json.loads(listed.stdout) == {"oa": "sk-…9876"} and KEY not in listed.output
    assert "sk-…9876" in runner.invoke(app, ["keys", "list"]).stdout
    assert runner.invoke(app, ["keys", "remove", "oa"]).exit_code == 0
    assert runner.invoke(app, ["keys", "remove", "oa"]).exit_code == 3


def test_llm_list_json(runner: CliRunner, magray_home: Path, server: Scripted) -> None:
    _config(magray_home, server.url)
    runner.invoke(app, ["keys", "set", "oa"], input=KEY + "\n")
    done = runner.invoke(app, ["llm", "list", "--json"])
    assert done.exit_code == 0, done.output
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["oa"]["default"] is True and rows["oa"]["key"] == "set"
    assert rows["oa"]["base_url"] == f"{server.url}/v1" and rows["oa"]["breaker"] == "closed"
    assert rows["local"]["type"] == "local" and rows["local"]["fallback"] is True
    assert KEY not in done.output


def test_llm_test_and_usage(runner: CliRunner, magray_home: Path, server: Scripted) -> None:
    _config(magray_home, server.url)
    runner.invoke(app, ["keys", "set", "oa"], input=KEY + "\n")
    server.add(oa_stream(["Hello", " there"], usage=(9, 2)))
    done = runner.invoke(app, ["llm", "test", "--json"])
    assert done.exit_code == 0, done.output
    row = json.loads(done.stdout)
    assert row["provider"] == "oa" and row["text"] == "Hello there"
    assert row["completion_tokens"] == 2 and row["first_token_ms"] is not None
    usage = runner.invoke(app, ["llm", "usage", "--json"])
    rows = json.loads(usage.stdout)
    assert [(r["provider"], r["calls"], r["prompt_tokens"]) for r in rows] == [("oa", 1, 9)]
    assert "gpt-test" in runner.invoke(app, ["llm", "usage"]).stdout


def test_errors_and_exit_codes(runner: CliRunner, magray_home: Path, server: Scripted) -> None:
    _config(magray_home, server.url)
    done = runner.invoke(app, ["llm", "test", "nope"])
    assert done.exit_code == 2 and "configured: local, oa" in done.output
    done = runner.invoke(app, ["llm", "test", "oa"])
    assert done.exit_code == 1
    assert "MAGRAY_TEST_OA_KEY" in done.output and "magray keys set oa" in done.output
    runner.invoke(app, ["keys", "set", "oa"], input=KEY + "\n")
    server.add(Reply(500, {"error": {"message": "down"}}))
    done = runner.invoke(app, ["llm", "test", "oa"])
    assert done.exit_code == 5 and f"{server.url}/v1" in done.output
    (magray_home / "config.toml").write_text('[llm.providers.x]\ntype = "gpt"\n')
    done = runner.invoke(app, ["llm", "list"])
    assert done.exit_code == 1 and "llm.providers.x.type" in done.output


def test_ask_stopped_by_ctrl_c_keeps_the_answer_and_exits_130(
    runner: CliRunner, magray_home: Path, server: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while the answer streams: what was said is shown and kept, and the exit code
    # says it was interrupted (130), so `magray ask … && next` does not go on
    from magray.llm.router import Router

    _config(magray_home, server.url)
    runner.invoke(app, ["keys", "set", "oa"], input=KEY + "\n")
    server.add(oa_stream(["Port", " 5433", " is", " the", " one"]))
    stream = Router.stream

    def stopped(self: Router, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for i, chunk in enumerate(stream(self, *args, **kwargs)):
            if i == 3:
                raise KeyboardInterrupt  # as Ctrl-C arrives while the model writes
            yield chunk

    monkeypatch.setattr(Router, "stream", stopped)
    done = runner.invoke(app, ["ask", "which port?", "--no-memory"])
    assert done.exit_code == 130, done.output
    assert "Port 5433" in done.stdout
    assert "stopped by Ctrl-C" in done.stderr
    # the provider never reported usage: the ledger and the log estimate it, not 0 + 0
    [row] = json.loads(runner.invoke(app, ["llm", "usage", "--json"]).stdout)
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    [turn] = json.loads(runner.invoke(app, ["logs", "--json"]).stdout)
    assert turn["prompt_tokens"] == row["prompt_tokens"] and turn["completion_tokens"] > 0
