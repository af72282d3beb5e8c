"""`magray ask` and `magray logs`: one-shot answers grounded in memory, and their log."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from magray.cli.context import nonblank, read_text
from magray.llm.base import capabilities_of
from magray.views import ask_json

if TYPE_CHECKING:
    from magray.agent.session import AskResult, Session
    from magray.memory.records import Filters
    from magray.runtime import Runtime

TINY_MODEL_NOTE = (
    "this answer came from the small built-in model; for better answers configure a stronger"
    " provider (OpenAI, Anthropic, Ollama or any OpenAI-compatible server): see docs/llm.md."
)


def make_session(
    rt: Runtime,
    *,
    use_memory: bool,
    scope: Filters | None = None,
    k: int | None = None,
) -> Session:
    """The runtime's session, recalling from its memory unless ``use_memory`` is off."""
    return rt.session(rt.memory if use_memory else None, scope=scope, k=k)


def recall_scope(project: str | None, layer: list[str], tag: list[str]) -> Filters:
    """What ``--project``, ``--layer`` and ``--tag`` let recall draw on."""
    from magray.cli.context import parse_layer, utf8_arg
    from magray.memory.records import Filters

    for value in [project or "", *tag]:
        utf8_arg(value, "--project/--tag")
    return Filters(
        layers=tuple(parse_layer(x) for x in layer), tags=tuple(tag), project=project or None
    )


def check_k(k: int | None) -> int | None:
    from magray.errors import UsageError

    if k is not None and not 1 <= k <= 100:
        raise UsageError(f"-k must be between 1 and 100 memories (got {k}).")
    return k


result_json = ask_json  # the one shape the server shares


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


def streamer(citable: Callable[[], int] | None = None) -> Callable[[str], None]:
    """Writes an answer to stdout as it streams, without the model's leading whitespace.

    ``citable()`` says how many memories the answer may cite: a marker ``[n]`` naming none
    of them (a small model copying the prompt's style, or any marker with ``--no-memory``)
    is left out. Markers are held back until they are complete, so nothing is unprinted.
    """
    started = False
    pending = ""
    held = ""  # trailing spaces, printed only when more text follows (a dropped marker eats them)

    def emit(text: str) -> None:
        nonlocal started, held
        if not started:
            text = text.lstrip()
            if not text:
                return
            started = True
        text = held + text
        body = text.rstrip(" ")
        held = text[len(body) :]
        if body:
            sys.stdout.write(body)
            sys.stdout.flush()

    def write(text: str) -> None:
        nonlocal pending, held
        if citable is None:
            emit(text)
            return
        pending += text
        while pending:
            start = pending.find("[")
            if start == -1:
                emit(pending)
                pending = ""
                break
            emit(pending[:start])
            end = pending.find("]", start)
            if end == -1:
                if len(pending) - start > 8:  # too long for a citation marker
                    emit(pending[start])
                    pending = pending[start + 1 :]
                    continue
                pending = pending[start:]  # wait for the rest of the marker
                break
            marker = pending[start : end + 1]
            inner = marker[1:-1]
            if inner.isdigit() and not 1 <= int(inner) <= citable():
                held = ""  # the marker and the space before it go
            else:
                emit(marker)
            pending = pending[end + 1 :]

    return write


def ask(
    question: str | None = typer.Argument(
        None, help="The question (read from standard input when left out or '-')."
    ),
    provider: str | None = typer.Option(None, "--provider", help="Provider name (llm list)."),
    model: str | None = typer.Option(None, "--model", help="Model of that provider."),
    no_memory: bool = typer.Option(False, "--no-memory", help="Neither recall nor remember."),
    project: str | None = typer.Option(
        None, "--project", help="Recall only this project.", callback=nonblank
    ),
    layer: list[str] = typer.Option([], "--layer", help="Recall only this layer (repeatable)."),
    tag: list[str] = typer.Option([], "--tag", help="Recall only records with this tag."),
    k: int | None = typer.Option(None, "-k", help="How many memories to recall (1–100)."),
    cont: bool = typer.Option(False, "-c", "--continue", help="Continue the last conversation."),
    conversation: str | None = typer.Option(
        None, "--conversation", help="Continue this one.", callback=nonblank
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (no streaming)."),
) -> None:
    """Answer a question, grounded in memory, streaming as it is generated.

    Example: magray ask "how does MAGRAY decide what to keep?"
    """
    from magray.cli.context import runtime
    from magray.errors import NotFoundError, UsageError

    text = read_text(question, "the question")
    if not text.strip():
        raise UsageError("the question is empty; ask something, or pipe it in.")
    from magray.agent.session import check_length

    check_length(text, "the question")
    if cont and conversation:
        raise UsageError("use either -c or --conversation, not both.")
    scope = recall_scope(project, layer, tag)
    rt = runtime()  # closed when the command ends
    if model is not None:  # a model the provider cannot run: refused before anything loads
        if not model.strip():
            raise UsageError(
                "the model name is empty; leave --model out, or see `magray llm list`."
            )
        rt.router.check_model(rt.router.config.chain(provider)[0], model)
    session = make_session(rt, use_memory=not no_memory, scope=scope, k=check_k(k))
    conv = conversation
    if cont:
        conv = session.log.last_conversation()
    elif conversation and not session.log.exists(conversation):
        raise NotFoundError(f"no conversation {conversation!r}; see `magray logs`.")
    from magray.agent.turn import AgentTurn
    from magray.cli.render import StatusLine
    from magray.llm.status import reporting

    # the agent turn without acting: recall, answer (streamed, cited), remember; a slow
    # local model says what it is doing (assembling, loading, thinking) until it answers
    with reporting(StatusLine()):
        result = (
            AgentTurn(session)
            .take(
                text,
                act=False,
                provider=provider,
                model=model,
                conversation_id=conv,
                on_text=None if json_out else streamer((lambda: 0) if no_memory else None),
            )
            .ask
        )
    assert result is not None  # a turn that may not act always answers
    if no_memory:  # nothing to cite: markers a model wrote anyway are noise
        import dataclasses
        import re

        result = dataclasses.replace(result, answer=re.sub(r" ?\[\d+\]", "", result.answer))
    if json_out:
        typer.echo(json.dumps(result_json(result), ensure_ascii=False))
    else:
        show_result(session, result)
    if result.finish_reason == "interrupted":
        raise typer.Exit(130)  # the partial answer is shown and kept; the exit says it stopped


def logs(
    n: int = typer.Option(10, "-n", help="How many recent exchanges."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show recent exchanges: question, answer, provider, tokens, latency, cited memories.

    Example: magray logs -n 5 --json
    """
    from magray.cli import render
    from magray.cli.context import runtime
    from magray.errors import UsageError

    if n < 1:
        raise UsageError(f"-n must be at least 1 (got {n}).")
    if n > 100_000:
        raise UsageError(f"-n must be at most 100,000 (got {n}).")
    with runtime() as rt:
        turns = rt.conversations.recent(n)
    if json_out:
        typer.echo(json.dumps([t.to_dict() for t in turns], ensure_ascii=False))
        return
    render.turns(turns)
