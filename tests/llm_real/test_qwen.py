"""The default local model (Qwen2.5-Coder-0.5B-Instruct) for real: few, deliberately small.

Grounded answers cite their memory and say "I don't know" when the memories do not hold
the answer; a JSON schema constrains answers on the chat path; the planner plans under a
grammar. (`make test-models` installs the model; tests never download.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from magray.agent.planner import Planner
from magray.agent.session import GROUNDED_PROMPT, UsedMemory, build_messages, citations
from magray.agent.strategies.grammar import GrammarChat
from magray.config import load_settings
from magray.llm.base import Message, Request
from magray.llm.config import ProviderConfig
from magray.llm.local import LocalProvider
from magray.llm.router import Router
from magray.memory.records import Layer
from magray.tools.registry import default_registry

MEMORIES = [
    UsedMemory("m1", Layer.INSIGHTS, 0.9, "The staging database listens on port 5433.", None),
    UsedMemory("m2", Layer.ASSETS, 0.5, "Run `make test` to lint and test MAGRAY.", "README.md"),
]


@pytest.fixture(scope="module")
def qwen(qwen_gguf: Path) -> LocalProvider:
    config = ProviderConfig(name="local", type="local", model_path=qwen_gguf, threads=2)
    return LocalProvider(config, load_settings())


def answer(provider: LocalProvider, question: str) -> str:
    messages, _, _, _ = build_messages(
        question,
        MEMORIES,
        [],
        budget=3000,
        count=provider.count_tokens,
        system_prompt=GROUNDED_PROMPT,
    )
    request = Request(tuple(messages), temperature=0.0, max_tokens=60)
    text = "".join(c.text for c in provider.stream(request)).strip()
    return text


def test_capabilities_come_from_the_model(qwen: LocalProvider) -> None:
    caps = qwen.capabilities
    assert caps.chat_template and caps.json_schema and not caps.native_tools
    assert caps.context_window >= 4096 and caps.small


def test_grounded_answer_cites_and_unknown_says_so(qwen: LocalProvider) -> None:
    known = answer(qwen, "Which port does the staging database listen on?")
    assert "5433" in known
    assert citations(known, MEMORIES) == ["m1"]
    unknown = answer(qwen, "What is the name of the MAGRAY mascot?")
    assert "don't know" in unknown.lower()


def test_json_schema_constrains_the_chat_path(qwen: LocalProvider) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}, "year": {"type": "integer"}},
        "required": ["city", "year"],
    }
    request = Request(
        (Message("user", "The Eiffel Tower was finished in 1889 in Paris. Give city and year."),),
        max_tokens=40,
        temperature=0.0,
        json_schema=schema,
    )
    data = json.loads("".join(c.text for c in qwen.stream(request)))
    assert data == {"city": "Paris", "year": 1889}


def test_json_schema_keeps_the_order_of_its_properties(qwen: LocalProvider) -> None:
    # the plan schema puts "tool" before "args": the model must name the tool first
    schema = {
        "type": "object",
        "properties": {"year": {"type": "integer"}, "city": {"type": "string", "maxLength": 30}},
        "required": ["year", "city"],
    }
    request = Request(
        (Message("user", "The Eiffel Tower was finished in 1889 in Paris. Give year and city."),),
        max_tokens=40,
        temperature=0.0,
        json_schema=schema,
    )
    text = "".join(c.text for c in qwen.stream(request))
    assert text.index('"year"') < text.index('"city"')


def test_planner_uses_the_grammar_strategy(
    qwen_gguf: Path, default_model_dir: Path, magray_home: Path
) -> None:
    (magray_home / "config.toml").write_text(
        f'[llm.providers.local]\ntype = "local"\nmodel_path = "{qwen_gguf}"\nthreads = 2\n'
    )
    registry = default_registry()
    with Router(load_settings()) as router:
        planner = Planner(router, registry)
        assert isinstance(planner.strategy(), GrammarChat)
        planned = planner.plan("show the last 3 commits")
    assert planned.plan is not None
    assert planned.plan.steps[0].tool == "git_log"
