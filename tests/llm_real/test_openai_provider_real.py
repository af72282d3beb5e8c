"""MAGRAY's ``openai`` provider, through the router, against a real llama.cpp server on loopback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.config import load_settings
from magray.errors import ProviderUnavailableError
from magray.llm.base import Message, Request
from magray.llm.router import Router

RUNNER = CliRunner()


def _router(home: Path, url: str, extra: str = "") -> Router:
    (home / "config.toml").write_text(
        f'[llm]\ndefault = "llamacpp"\n\n[llm.providers.llamacpp]\ntype = "openai"\n'
        f'base_url = "{url}"\nmodel = "gemma"\ntemperature = 0\n{extra}\n'
        '[llm.providers.local]\ntype = "local"\nmodel = "local-tiny"\nthreads = 1\n',
        encoding="utf-8",
    )
    return Router(load_settings())


def _request(text: str, max_tokens: int = 16) -> Request:
    return Request(messages=(Message("user", text),), max_tokens=max_tokens)


def test_complete_and_usage_ledger(magray_home: Path, llama_server_url: str) -> None:
    with _router(magray_home, llama_server_url) as router:
        done = router.complete(_request("Say hello in one short sentence."))
    assert done.text.strip()
    assert done.provider == "llamacpp" and done.model == "gemma"
    assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0  # as the server says
    assert done.finish_reason in {"stop", "length"}
    listed = RUNNER.invoke(app, ["llm", "usage", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [r for r in json.loads(listed.stdout) if r["provider"] == "llamacpp"]
    assert len(rows) == 1 and rows[0]["calls"] == 1 and rows[0]["errors"] == 0
    assert rows[0]["model"] == "gemma"
    assert rows[0]["prompt_tokens"] == done.usage.prompt_tokens
    assert rows[0]["completion_tokens"] == done.usage.completion_tokens


def test_stream_arrives_incrementally(magray_home: Path, llama_server_url: str) -> None:
    arrivals: list[tuple[float, str]] = []
    final = None
    with _router(magray_home, llama_server_url) as router:
        for chunk in router.stream(_request("Count from one to ten in words.", 24)):
            if chunk.text:
                arrivals.append((time.perf_counter(), chunk.text))
            if chunk.usage is not None:
                final = chunk
    assert len(arrivals) >= 3  # token by token, not one block at the end
    assert arrivals[0][0] < arrivals[-1][0]
    assert final is not None and final.usage is not None
    assert final.usage.completion_tokens >= len(arrivals) - 1


def test_timeout_names_the_url_within_bounds(magray_home: Path, llama_server_url: str) -> None:
    with _router(magray_home, llama_server_url, "timeout = 0.001\nmax_retries = 0") as router:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailableError) as caught:
            router.complete(_request("Write a long story.", 8), fallback=False)
        elapsed = time.monotonic() - started
        assert router.usage.totals("2000-01-01")[0].errors == 1
    assert llama_server_url in caught.value.message
    assert "did not answer within" in caught.value.message
    assert elapsed < 10


def test_ask_answers_through_the_server(
    magray_home: Path, llama_server_url: str, default_model_dir: Path
) -> None:
    # a base model behind a server runs to n_ctx unless the provider bounds the answer
    _router(magray_home, llama_server_url, "max_tokens = 32").close()
    added = RUNNER.invoke(app, ["memory", "add", "The Quillon ferry leaves at seven.", "--json"])
    assert added.exit_code == 0, added.output
    done = RUNNER.invoke(
        app, ["ask", "When does the Quillon ferry leave?", "--provider", "llamacpp", "--json"]
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["provider"] == "llamacpp" and data["model"] == "gemma"
    assert data["answer"].strip()
    assert json.loads(added.stdout)["id"] in [m["id"] for m in data["memories"]]
    assert data["usage"]["prompt_tokens"] > 0 and data["usage"]["completion_tokens"] > 0
    log = json.loads(RUNNER.invoke(app, ["logs", "-n", "1", "--json"]).stdout)[0]
    assert log["provider"] == "llamacpp" and log["conversation_id"] == data["conversation_id"]
