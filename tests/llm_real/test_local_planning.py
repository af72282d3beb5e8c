"""The embedded base model plans for real: JSON grammar, few-shot examples, `bench agent`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from magray.agent.fewshot import ExampleSelector
from magray.agent.plan import validate
from magray.agent.planner import Planner
from magray.cli.main import app
from magray.config import load_settings
from magray.embed import load_embedder
from magray.llm.base import Message, Request
from magray.llm.config import ProviderConfig
from magray.llm.local import LocalProvider
from magray.llm.router import Router
from magray.tools.registry import default_registry


def test_json_schema_constrains_the_local_model(local_gguf: Path) -> None:
    config = ProviderConfig(name="local", type="local", model_path=local_gguf, threads=1)
    provider = LocalProvider(config, load_settings())
    assert not provider.capabilities.chat_template  # a base model
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}, "year": {"type": "integer"}},
        "required": ["city", "year"],
    }
    request = Request(
        (Message("user", "The Eiffel Tower, finished in 1889, stands in Paris.\nAs JSON:"),),
        max_tokens=40,
        temperature=0.0,
        completion=True,
        json_schema=schema,
    )
    text = "".join(c.text for c in provider.stream(request))
    data = json.loads(text)
    assert set(data) == {"city", "year"} and isinstance(data["year"], int)


def test_planner_with_the_real_local_model(
    local_gguf: Path, default_model_dir: Path, magray_home: Path
) -> None:
    settings = load_settings()
    registry = default_registry()
    with Router(settings) as router:
        selector = ExampleSelector(lambda: load_embedder(settings))
        planner = Planner(router, registry, selector=selector)
        planned = planner.plan("show the last 3 commits")
    assert selector.method == "embedding"
    assert planned.plan is not None or planned.answer
    if planned.plan is not None:
        assert validate(planned.plan, registry) == []
        assert 1 <= len(planned.plan.steps) <= 3


def test_bench_agent_cli_reports_accuracy(
    local_gguf: Path, default_model_dir: Path, magray_home: Path
) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("bench", "agent", "--provider", "local-tiny"),
            *("--limit", "2", "--strategy", "lexical", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["provider"] == "local-tiny" and out["base_model"] is True
    summary = out["strategies"]["lexical"]
    assert summary["cases"] == 2 and summary["examples"] == "lexical"
    assert 0.0 <= summary["tool_accuracy"] <= 1.0 and len(summary["rows"]) == 2
    assert set(summary["rows"][0]) >= {"request", "expected", "got", "ok", "ms", "plan"}
    bad = CliRunner().invoke(app, ["bench", "agent", "--strategy", "magic"])
    assert bad.exit_code == 2 and "unknown strategy 'magic'" in bad.stderr
