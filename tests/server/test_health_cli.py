"""`magray health` prints the checks /readyz answers, with the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app as cli


@pytest.mark.model
def test_health_json_matches_readyz(default_model_dir: Path, magray_home: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["health", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["ok"] is True
    assert [c["name"] for c in data["checks"]] == [
        "store",
        "indexes",
        "embedding_model",
        "llm_provider",
    ]
    human = runner.invoke(cli, ["health"])
    assert human.exit_code == 0 and "embedding_model" in human.output


def test_health_fails_with_a_reason_when_the_model_is_unknown(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAGRAY_EMBED_MODEL", "no-such-model")
    out = CliRunner().invoke(cli, ["health", "--json"])
    assert out.exit_code == 1
    checks = {c["name"]: c for c in json.loads(out.output)["checks"]}
    assert checks["embedding_model"]["ok"] is False
    assert "no-such-model" in checks["embedding_model"]["detail"]
    assert checks["store"]["ok"] is True


def test_serve_help_is_quick_to_reach() -> None:
    out = CliRunner().invoke(cli, ["serve", "--help"])
    assert out.exit_code == 0 and "--workers" in out.output


def test_serve_on_a_busy_port_is_one_line() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert out.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in out.output
    assert "Traceback" not in out.output


def test_an_empty_host_is_refused_by_serve_and_ui() -> None:
    from tests.cli.test_errors_cli import fails, run

    for command in ("serve", "ui"):
        fails(run([command, "--host", " "]), 2, "--host is empty", "127.0.0.1")
