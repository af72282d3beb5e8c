"""`magray models` lists and describes the installable local LLMs (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from magray.cli.main import app

RUNNER = CliRunner()


def test_list_and_info_show_local_llms(magray_home: Path) -> None:
    rows = json.loads(RUNNER.invoke(app, ["models", "list", "--json"]).stdout)
    llms = {r["name"]: r for r in rows if r["kind"] == "llm"}
    assert set(llms) == {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma-3-270m"}
    assert llms["qwen2.5-coder-0.5b"]["active"] and not llms["gemma-3-270m"]["active"]
    assert llms["qwen2.5-coder-0.5b"]["install"] == "magray models install local"
    (magray_home / "config.toml").write_text(
        '[llm.providers.local]\ntype = "local"\nmodel = "local-tiny"\n'
    )
    info = json.loads(RUNNER.invoke(app, ["models", "info", "local-tiny", "--json"]).stdout)
    assert info["name"] == "gemma-3-270m" and info["active"] and not info["chat_template"]
    qwen = json.loads(RUNNER.invoke(app, ["models", "info", "qwen2.5-1.5b", "--json"]).stdout)
    assert qwen["bytes"] == 1_117_320_768 and qwen["license"] == "Apache-2.0"


def test_an_unknown_local_model_in_config_names_the_known_ones(magray_home: Path) -> None:
    (magray_home / "config.toml").write_text(
        '[llm.providers.local]\ntype = "local"\nmodel = "gpt-9"\n'
    )
    done = RUNNER.invoke(app, ["ask", "hello", "--no-memory"])
    assert done.exit_code == 1
    assert "'gpt-9' of [llm.providers.local] is not a model MAGRAY can install" in done.stderr
