"""`magray bench agent`: how often the planner picks the right tool, on labelled requests.

Each case is a request and the tools that would be right for its first step (or
``answer`` when the planner should answer directly). The planner runs exactly as in
`magray run` — same prompt, same grammar, same repairs — against the chosen provider;
nothing is executed. Measured, not asserted: the figures depend on the model.

Reported per strategy (how base models get their examples and candidate tools:
``nearest-tool`` the nearest example decides the tool, the model fills the arguments — the
default of `magray run`; ``nearest`` the model chooses among the six nearest examples'
tools; ``lexical`` the same by word overlap; ``fixed`` six fixed examples, every tool —
the baseline):
``tool_accuracy`` (first step's tool, or a direct answer, is one of the expected),
``intent_accuracy`` (plan vs direct answer right), ``valid`` (a plan that passed
validation, or an answer), latency percentiles, and every case.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from magray.agent.fewshot import ExampleSelector, FixedSelector
from magray.agent.planner import Planner
from magray.config import Settings
from magray.errors import MagrayError, UsageError
from magray.llm.base import capabilities_of

ANSWER = "answer"

#: (request, acceptable first tools). None of these requests is a worked example.
CASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("read the first 20 lines of setup.py", ("file_read",)),
    ("print the contents of pyproject.toml", ("file_read",)),
    ("list the files in the src folder", ("file_list",)),
    ("find all TODO comments in the python code", ("file_grep",)),
    ("look for the word deprecated in the docs folder", ("file_grep",)),
    ("find every markdown file in the repository", ("file_glob",)),
    ("create a file hello.txt that says hi", ("file_write",)),
    ("change colour to color in README.md", ("file_edit",)),
    ("fix the spelling of 'teh' to 'the' in notes.md and commit it", ("file_edit",)),
    ("rename notes.txt to notes.md", ("file_move",)),
    ("delete the file build.log", ("file_delete",)),
    ("stage README.md for commit", ("git_add",)),
    ('commit the staged changes with the message "Fix typo"', ("git_commit",)),
    ("show the last 5 commits", ("git_log",)),
    ("what changed in the working tree compared to the last commit?", ("git_diff", "git_status")),
    ("is my working tree clean?", ("git_status",)),
    ("show me commit 3f2a9c1", ("git_show",)),
    ("create a new branch called feature-login", ("git_branch", "git_checkout")),
    ("switch to the main branch", ("git_checkout",)),
    ("run the test suite with pytest", ("shell_exec",)),
    ("how much disk space is free? run df -h", ("shell_exec",)),
    ("run ruff check on the src folder", ("shell_exec",)),
    ("fetch https://example.com/changelog and summarise it", ("web_fetch",)),
    ("search the web for python asyncio tutorials", ("web_search",)),
    ("remember that the staging database password rotates every Monday", ("memory_remember",)),
    ("save a note that the release is on Friday", ("memory_remember",)),
    ("what did I note earlier about the deployment process?", ("memory_recall",)),
    ("forget memory record 0196ab", ("memory_forget",)),
    ("add a task to write the release notes", ("task_add",)),
    ("show my open tasks", ("task_list",)),
    ("which tasks are blocked?", ("task_list",)),
    ("mark task 7 as done", ("task_update",)),
    ("what is the capital of France?", (ANSWER,)),
    ("how many days are in a leap year?", (ANSWER,)),
    ('translate "good morning" into Spanish', (ANSWER,)),
    ("what is the boiling point of water in Celsius?", (ANSWER,)),
)

STRATEGIES = ("nearest-tool", "nearest", "lexical", "fixed")


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def selector_for(settings: Settings, strategy: str) -> ExampleSelector:
    """The example selector a strategy names (``nearest`` needs the embedding model)."""
    if strategy in ("nearest", "nearest-tool"):
        from magray.embed import load_embedder

        return ExampleSelector(
            lambda: load_embedder(settings), follow_nearest=strategy == "nearest-tool"
        )
    if strategy == "lexical":
        return ExampleSelector()
    if strategy == "fixed":
        return FixedSelector()
    raise UsageError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}.")


def select_cases(only: Sequence[str] = ()) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The cases whose request contains one of ``only`` (all of them without ``only``)."""
    if not only:
        return CASES
    if any(not text.strip() for text in only):
        raise UsageError("--only is empty; give some words of a request, or leave it out.")
    wanted = [text.lower() for text in only]
    cases = tuple(c for c in CASES if any(w in c[0].lower() for w in wanted))
    if not cases:
        raise UsageError(
            f"no request contains {only[0]!r}; `magray bench agent --json` lists them all."
        )
    return cases


def run_cases(planner: Planner, cases: Sequence[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    """Plan every case with ``planner``; the summary and the per-case rows."""
    rows: list[dict[str, Any]] = []
    for request, expected in cases:
        started = time.perf_counter()
        got: str | None
        error = None
        try:
            planned = planner.plan(request)
            got = ANSWER if planned.plan is None else planned.plan.steps[0].tool
            plan = [s.to_dict() for s in planned.plan.steps] if planned.plan else None
            valid = True
        except MagrayError as exc:
            got, plan, valid, error = None, None, False, exc.message
        ms = (time.perf_counter() - started) * 1000
        rows.append(
            {
                "request": request,
                "expected": list(expected),
                "got": got,
                "ok": got in expected,
                "intent_ok": (got == ANSWER) == (ANSWER in expected) and got is not None,
                "valid": valid,
                "ms": round(ms, 1),
                "plan": plan,
                "error": error,
            }
        )
    n = len(rows) or 1
    times = [r["ms"] for r in rows]
    return {
        "cases": len(rows),
        "tool_accuracy": round(sum(r["ok"] for r in rows) / n, 4),
        "intent_accuracy": round(sum(r["intent_ok"] for r in rows) / n, 4),
        "valid": round(sum(r["valid"] for r in rows) / n, 4),
        "median_ms": round(statistics.median(times), 1) if times else 0.0,
        "p90_ms": round(_percentile(times, 0.9), 1),
        "rows": rows,
    }


def bench_agent(
    settings: Settings,
    *,
    provider: str | None = None,
    strategies: Sequence[str] = ("nearest-tool",),
    limit: int | None = None,
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """Tool-choice accuracy of ``provider`` (default: the local model) per strategy.

    ``only``: just the cases whose request contains one of these texts (case-insensitive).
    """
    from magray.llm.router import Router
    from magray.tools.registry import default_registry

    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise UsageError(
            f"unknown strategy {unknown[0] if unknown else ''!r}; use one or more of "
            f"{', '.join(STRATEGIES)}."
        )
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1.")
    cases = select_cases(only)
    cases = cases[:limit] if limit else cases
    registry = default_registry()
    from magray.llm.config import load_llm_config
    from magray.llm.local_models import with_local_models

    if provider is not None and not provider.strip():
        raise UsageError("--provider is empty; give a provider or a local model name.")
    name = provider or "local"
    config = with_local_models(load_llm_config(settings), [name])  # local-tiny, qwen2.5-1.5b
    with Router(settings, config=config) as router:
        llm = router.provider(name)
        result: dict[str, Any] = {
            "provider": llm.name,
            "model": llm.model,
            "base_model": not capabilities_of(llm).chat_template,
            "strategies": {},
        }
        for strategy in strategies:
            planner = Planner(
                router, registry, provider=name, selector=selector_for(settings, strategy)
            )
            summary = run_cases(planner, cases)
            summary["examples"] = planner.selector.method
            result["strategies"][strategy] = summary
    return result
