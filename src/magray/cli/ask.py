"""`magray ask` and `magray logs`: one-shot answers grounded in memory, and their log."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from magray.cli.context import iso, read_text
from magray.llm.base import capabilities_of

if TYPE_CHECKING:
    from magray.agent.conversations import ConversationLog
    from magray.agent.session import AskResult, Session
    from magray.config import Settings

TINY_MODEL_NOTE = (
    "this answer came from the small built-in model; for better answers configure a stronger"
    " provider (OpenAI, Anthropic, Ollama or any OpenAI-compatible server): see docs/llm.md."
)


def open_log(settings: Settings) -> ConversationLog:
    from magray.agent.conversations import ConversationLog

    return ConversationLog(settings.paths.data_dir / "conversations.db")


def make_session(settings: Settings, *, use_memory: bool) -> Session:
    from magray.agent.session import Session
    from magray.cli import render
    from magray.llm.router import Router
    from magray.memory.service import Memory

    memory = Memory(settings, warn=render.warn) if use_memory else None
    return Session(Router(settings), memory, open_log(settings))


def result_json(result: AskResult) -> dict[str, Any]:
    return {
        "answer": result.answer,
        "provider": result.provider,
        "model": result.model,
        "conversation_id": result.conversation_id,
        "memories": [
            {"id": m.id, "layer": str(m.layer), "score": m.score} for m in result.memories
        ],
        "cited": result.cited,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
        },
        "latency_ms": round(result.latency_ms, 1),
        "finish_reason": result.finish_reason,
        "notes": result.notes,
    }


def show_result(session: Session, result: AskResult) -> None:
    """After a streamed answer: the cited sources, notes, and the tiny-model hint."""
    from magray.cli import render

    typer.echo("")
    render.sources(result)
    for note in result.notes:
        render.note(note)
    provider = session.llm.provider(result.provider)
    if capabilities_of(provider).small:
        render.note_once(TINY_MODEL_NOTE)


def streamer() -> Callable[[str], None]:
    """Writes an answer to stdout as it streams, without the model's leading whitespace."""
    started = False

    def write(text: str) -> None:
        nonlocal started
        if not started:
            text = text.lstrip()
            if not text:
                return
            started = True
        sys.stdout.write(text)
        sys.stdout.flush()

    return write


def ask(
    question: str = typer.Argument(..., help="The question, or '-' to read standard input."),
    provider: str | None = typer.Option(None, "--provider", help="Provider name (llm list)."),
    model: str | None = typer.Option(None, "--model", help="Model of that provider."),
    no_memory: bool = typer.Option(False, "--no-memory", help="Neither recall nor remember."),
    cont: bool = typer.Option(False, "-c", "--continue", help="Continue the last conversation."),
    conversation: str | None = typer.Option(None, "--conversation", help="Continue this one."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (no streaming)."),
) -> None:
    """Answer a question, grounded in memory, streaming as it is generated.

    Example: magray ask "how does MAGRAY decide what to keep?"
    """
    from magray.cli.context import settings as load
    from magray.errors import NotFoundError, UsageError

    text = read_text(question)
    if not text.strip():
        raise UsageError("the question is empty; ask something, or pipe it in with '-'.")
    if cont and conversation:
        raise UsageError("use either -c or --conversation, not both.")
    settings = load()
    session = make_session(settings, use_memory=not no_memory)
    conv = conversation
    if cont:
        conv = session.log.last_conversation()
    elif conversation and not session.log.exists(conversation):
        raise NotFoundError(f"no conversation {conversation!r}; see `magray logs`.")
    from magray.agent.turn import AgentTurn

    # the agent turn without acting: recall, answer (streamed, cited), remember
    result = (
        AgentTurn(session)
        .take(
            text,
            act=False,
            provider=provider,
            model=model,
            conversation_id=conv,
            on_text=None if json_out else streamer(),
        )
        .ask
    )
    assert result is not None  # a turn that may not act always answers
    if json_out:
        typer.echo(json.dumps(result_json(result), ensure_ascii=False))
    else:
        show_result(session, result)


def logs(
    n: int = typer.Option(10, "-n", help="How many recent exchanges."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show recent exchanges: question, answer, provider, tokens, latency, cited memories.

    Example: magray logs -n 5 --json
    """
    from magray.cli import render
    from magray.cli.context import settings as load
    from magray.errors import UsageError

    if n < 1:
        raise UsageError(f"-n must be at least 1 (got {n}).")
    log = open_log(load())
    turns = log.recent(n)
    if json_out:
        typer.echo(
            json.dumps(
                [
                    {
                        "conversation_id": t.conversation_id,
                        "at": iso(t.at),
                        "prompt": t.prompt,
                        "answer": t.answer,
                        "provider": t.provider,
                        "model": t.model,
                        "prompt_tokens": t.prompt_tokens,
                        "completion_tokens": t.completion_tokens,
                        "latency_ms": round(t.latency_ms, 1),
                        "memories": list(t.memories),
                        "finish_reason": t.finish_reason,
                    }
                    for t in turns
                ],
                ensure_ascii=False,
            )
        )
        return
    render.turns(turns)
