"""One grounded turn: recall → fit the context → stream the answer → cite → remember → log.

The prompt numbers the recalled memories ``[1] … [n]``; the model is asked to cite them, and
the citations in its answer are mapped back to memory ids. When the prompt would overflow
the model's context, the lowest-ranked memories are dropped first, then the oldest turns of
the conversation, and the result says so in ``notes``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from magray.agent.cite import (
    CheckedStream,
    citation_note,
    grounded,
    holds_new_terms,
    in_focus,
    new_terms,
    off_focus,
    says_unknown,
)
from magray.agent.conversations import ConversationLog, Turn
from magray.agent.evidence import JOIN, Embedder, focus
from magray.agent.untrusted import RULE, untrusted
from magray.errors import MagrayError, UsageError
from magray.llm.base import (
    Chunk,
    Message,
    Provider,
    Request,
    Usage,
    capabilities_of,
    estimate_usage,
)
from magray.memory.records import Filters, Hit, Layer, NewRecord, Query, Record

SYSTEM_PROMPT = (
    "You are MAGRAY, a concise assistant in the user's terminal. Use the numbered memories "
    "when they are relevant and cite them inline like [1] or [2]. If the memories do not "
    "contain the answer, say so in one sentence, then answer briefly from general knowledge."
)
#: small models answer from the memories only: from "general knowledge" they make things up
GROUNDED_PROMPT = (
    "You are MAGRAY, a concise assistant in the user's terminal. Answer the question from "
    "the numbered memories only, in one to three sentences, and cite the memories you used "
    "inline like [1]. If the memories do not contain the answer, reply exactly: I don't know."
)
RECALL_K = 6
SMALL_RECALL_K = 6  # small models: more memories, each cut down to its matching sentences
SMALL_MEMORIES = 3  # of those, the memories a small model reads (the best after focusing)
FOCUS_TOKENS = 150  # the matching sentences a small model reads, at most
SMALL_BEST_LAST = True  # a small model reads the best memory last, next to the question
#: and, within each memory, the best unit last: a small model tends to take the value it
#: read last, nearest the question
SMALL_UNITS_BEST_LAST = True
SMALL_UNIT_LINES = False  # a small model reads each unit of evidence on a line of its own
#: a small model whose answer only restates the question (it names the subject, not the
#: value) is asked once more, for the value; its second answer follows the first
SMALL_RETRY = True
#: a small model's answer whose first sentence adds no word (or, adding numbers, no number)
#: that the memories it read hold is replaced by "I don't know" (``cite.grounded``)
SMALL_GROUNDED = True
#: a small model's grounded answer whose value comes from a unit of evidence that matches
#: the question much worse than the best unit (``cite.off_focus``: the neighbouring row or
#: sentence) is held back and asked again from the best-matching units alone; the second
#: answer is kept when the memories hold it and it is in focus, else the first is shown
SMALL_FOCUSED = True
FOCUS_NOTE = "the first answer took a value from a less relevant sentence: asked again"
UNGROUNDED_NOTE = 'the memories do not hold that answer: replaced by "I don\'t know"'
RETRY_CUE = "Reply with the value the memories give for this, and cite the memory."
MEMORY_TOKENS = 3000  # memories in one prompt, at most (and never more than the context)
SMALL_MEMORY_TOKENS = 600  # a small model on a CPU reads ~100-150 prompt tokens/s
MIN_MEMORY_TOKENS = 60  # a memory cut shorter than this is left out instead
ANSWER_RESERVE = 512  # tokens kept free for the answer when the request sets no max_tokens
HISTORY_TURNS = 6
EXCHANGE = "exchange"  # the kind of records that store asked questions and their answers
AGENT_RUN = "agent_run"  # the kind of records that store agent runs
FROM_AGENT = "source:agent"  # the provenance tag of what the agent (not the user) wrote
RUN_SUCCEEDED = "run:succeeded"  # the tag of an agent run that worked (the planner's examples)
_CITATION = re.compile(r"\[(\d{1,2})\]")

#: the longest question or request the agent takes (the API's limit too): a longer text is
#: a document to `magray ingest`, not a question
MAX_REQUEST_CHARS = 200_000


def check_length(text: str, what: str) -> None:
    """A UsageError when ``text`` (a question, a request, a task) is too long to ask, or
    holds NUL (never text: the exchange it makes could not be remembered)."""
    if "\x00" in text:
        raise UsageError(f"{what} contains NUL bytes; ask in text, not binary data.")
    if len(text) > MAX_REQUEST_CHARS:
        raise UsageError(
            f"{what} has {len(text):,} characters, more than {MAX_REQUEST_CHARS:,}; shorten"
            " it, or `magray ingest` the text and ask about it."
        )


class LLM(Protocol):
    """What a session needs from the LLM layer (the router implements it)."""

    def provider(self, name: str | None = None) -> Provider: ...

    def stream(self, request: Request, provider: str | None = None) -> Iterator[Chunk]: ...


class Recaller(Protocol):
    def recall(self, query: Query, *, record_access: bool = True) -> list[Hit]: ...

    def remember(self, item: NewRecord) -> object: ...


@runtime_checkable
class HasEmbedder(Protocol):
    @property
    def embedder(self) -> Embedder: ...


@dataclass(frozen=True, slots=True)
class UsedMemory:
    id: str
    layer: Layer
    score: float
    text: str
    uri: str | None
    #: the agent wrote it (a run's record, tool output included), not the user
    from_agent: bool = False
    #: the record's kind and tags (what the planner may draw on)
    kind: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class AskResult:
    answer: str
    provider: str
    model: str
    conversation_id: str
    memories: list[UsedMemory]
    cited: list[str]
    usage: Usage
    latency_ms: float
    first_token_ms: float | None
    finish_reason: str | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The answer as JSON data: ``magray ask --json`` and the server's ``POST /v1/ask``."""
        return {
            "answer": self.answer,
            "provider": self.provider,
            "model": self.model,
            "conversation_id": self.conversation_id,
            "memories": [
                {"id": m.id, "layer": str(m.layer), "score": m.score} for m in self.memories
            ],
            "cited": self.cited,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
            "latency_ms": round(self.latency_ms, 1),
            "finish_reason": self.finish_reason,
            "notes": self.notes,
        }


def new_conversation_id() -> str:
    return "c" + secrets.token_hex(6)


def short_source(uri: str) -> str:
    """A source as the prompt shows it: a file relative to the current folder when under it,
    else its last two path parts (fewer tokens, and no home folders in answers)."""
    from pathlib import Path, PurePath

    path = PurePath(uri)
    if not path.is_absolute():
        return uri
    try:
        return str(path.relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(PurePath(*path.parts[-2:]))


def memory_block(memories: Sequence[UsedMemory], *, unit_lines: bool = False) -> str:
    """The numbered memories; what the agent wrote is delimited as untrusted data.

    ``unit_lines`` puts each unit of focused evidence (joined by "…") on a line of its own
    under its memory's number, so a small model does not run one fact into the next.
    """
    lines = ["Memories:"]
    for i, m in enumerate(memories, 1):
        where = f" ({short_source(m.uri)})" if m.uri else ""
        if m.from_agent:
            text = untrusted(f"memory {m.id}: an earlier agent run", " ".join(m.text.split()))
            lines.append(f"[{i}]{where} {text}")
        elif unit_lines:
            lines.append(f"[{i}]{where}")
            lines.extend(f"- {' '.join(u.split())}" for u in m.text.split(JOIN))
        else:
            lines.append(f"[{i}]{where} {' '.join(m.text.split())}")
    return "\n".join(lines)


def from_agent(record: Record) -> bool:
    """Whether the agent wrote ``record`` (its provenance tag), not the user."""
    return FROM_AGENT in record.tags or record.kind == AGENT_RUN


def fit_memories(
    memories: Sequence[UsedMemory], tokens: int, count: Callable[[Sequence[Message]], int]
) -> list[UsedMemory]:
    """The memories, best first, within ``tokens`` tokens: the last one cut, the rest left out."""
    base = count([Message("user", "")])
    kept: list[UsedMemory] = []
    left = tokens
    for m in memories:
        size = count([Message("user", m.text)]) - base
        if size > left:
            if left < MIN_MEMORY_TOKENS:
                break
            cut = m.text[: max(1, len(m.text) * left // max(size, 1))]
            cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
            m = dataclasses.replace(m, text=cut + " …")
            size = left
        kept.append(m)
        left -= size
    return kept


def build_messages(
    question: str,
    memories: Sequence[UsedMemory],
    history: Sequence[Turn],
    *,
    budget: int,
    count: Callable[[Sequence[Message]], int],
    system_prompt: str = SYSTEM_PROMPT,
    best_last: bool = False,
    unit_lines: bool = False,
) -> tuple[list[Message], list[UsedMemory], list[Turn], list[str]]:
    """Messages that fit ``budget`` tokens, dropping low-ranked memories then old turns.

    The fixed system prompt comes first so a local model's prompt cache can reuse it.
    ``best_last`` numbers the memories from the lowest-ranked to the best, which then sits
    next to the question; the memories come back in the order they are numbered.
    ``unit_lines``: one line per unit of focused evidence (see ``memory_block``).
    """
    mems = list(memories)
    turns = list(history)
    notes: list[str] = []

    def assemble() -> list[Message]:
        system = system_prompt
        if any(m.from_agent for m in mems):
            system += " " + RULE
        system += "\n\n" + memory_block(shown(), unit_lines=unit_lines) if mems else ""
        out = [Message("system", system)]
        for t in turns:
            out += [Message("user", t.prompt), Message("assistant", t.answer)]
        out.append(Message("user", question))
        return out

    def shown() -> list[UsedMemory]:
        return mems[::-1] if best_last else mems

    messages = assemble()
    dropped_mems = dropped_turns = 0
    while count(messages) > budget and (mems or turns):
        if mems:
            mems.pop()
            dropped_mems += 1
        else:
            turns.pop(0)
            dropped_turns += 1
        messages = assemble()
    if count(messages) > budget:
        raise UsageError(
            f"the question alone ({count(messages)} tokens) does not fit the model's context"
            f" ({budget} tokens for the prompt); shorten it or use a larger model."
        )
    if dropped_mems:
        notes.append(f"context full: left out the {dropped_mems} lowest-ranked memories")
    if dropped_turns:
        notes.append(f"context full: left out the {dropped_turns} oldest conversation turns")
    return messages, shown(), turns, notes


def restates(answer: str, question: str) -> bool:
    """Whether ``answer`` only restates ``question``: it adds no word of its own, quotes no
    code (a command or name the question also holds) and is no "I don't know"."""
    return (
        bool(answer.strip())
        and "`" not in answer
        and not says_unknown(answer)
        and not new_terms(answer, question)
    )


def citations(answer: str, memories: Sequence[UsedMemory]) -> list[str]:
    """Memory ids cited as ``[n]`` in ``answer``, in order of first citation."""
    ids: list[str] = []
    for match in _CITATION.finditer(answer):
        n = int(match.group(1))
        if 1 <= n <= len(memories) and memories[n - 1].id not in ids:
            ids.append(memories[n - 1].id)
    return ids


class Session:
    """Asks questions grounded in memory and remembers the exchange."""

    def __init__(
        self,
        llm: LLM,
        memory: Recaller | None,
        log: ConversationLog,
        *,
        scope: Filters | None = None,
        k: int | None = None,
    ) -> None:
        self.llm = llm
        self.memory = memory
        self.log = log
        self.scope = scope or Filters()  # what recall may draw on (project, layers, tags)
        self.k = k  # memories recalled per question (None: chosen for the provider)

    def recall(self, question: str, provider: str | None = None) -> list[UsedMemory]:
        """The memories relevant to ``question`` (none without a memory service)."""
        if self.memory is None:
            return []
        # Small models ground better on fewer, shorter notes: a provider may say so.
        small = capabilities_of(self.llm.provider(provider)).small
        k = self.k or (SMALL_RECALL_K if small else RECALL_K)
        # Earlier exchanges are not evidence: the conversation's own turns come from
        # the log, and recalling answers would let a model quote itself.
        excluded = tuple(dict.fromkeys((*self.scope.exclude_kinds, EXCHANGE)))
        filters = dataclasses.replace(self.scope, exclude_kinds=excluded)
        hits = self.memory.recall(Query(text=question, k=k, filters=filters))
        return [
            UsedMemory(
                h.record.id,
                h.record.layer,
                h.score,
                h.record.text,
                h.record.source.uri if h.record.source else None,
                from_agent(h.record),
                h.record.kind,
                h.record.tags,
            )
            for h in hits
        ]

    def ask(
        self,
        question: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        conversation_id: str | None = None,
        on_text: Callable[[str], None] | None = None,
        max_tokens: int | None = None,
        recalled: Sequence[UsedMemory] | None = None,
    ) -> AskResult:
        """Answer ``question`` from ``recalled`` memories (recalled here when None)."""
        if not question.strip():
            raise UsageError("the question is empty; ask something, or pipe it in with '-'.")
        check_length(question, "the question")
        prov = self.llm.provider(provider)
        conv = conversation_id or new_conversation_id()
        history = self.log.turns(conv, limit=HISTORY_TURNS) if conversation_id else []
        small = capabilities_of(prov).small
        if recalled is None:
            recalled = self.recall(question, prov.name)
        # a small context (n_ctx = 512) must not be all reserve: llama.cpp trims max_tokens
        reserve = max_tokens or min(ANSWER_RESERVE, prov.context_window // 2)
        budget = max(prov.context_window - reserve, 64)
        memory_tokens = min(SMALL_MEMORY_TOKENS if small else MEMORY_TOKENS, budget // 2)
        if small and recalled:
            # a small model answers from the matching sentences better than from whole chunks
            embedder = self.memory.embedder if isinstance(self.memory, HasEmbedder) else None
            recalled = focus(
                question,
                recalled,
                tokens=min(FOCUS_TOKENS, memory_tokens),
                count=prov.count_tokens,
                embedder=embedder,
                order="best_last" if SMALL_UNITS_BEST_LAST else "best_first",
            )[:SMALL_MEMORIES]
        recalled = fit_memories(recalled, memory_tokens, prov.count_tokens)
        messages, used, _, notes = build_messages(
            question,
            recalled,
            history,
            budget=budget,
            count=prov.count_tokens,
            system_prompt=GROUNDED_PROMPT if small else SYSTEM_PROMPT,
            best_last=small and SMALL_BEST_LAST,
            unit_lines=small and SMALL_UNIT_LINES,
        )
        # greedy decoding: a grounded answer copies a value, it does not vary it (unless the
        # provider's configuration sets a temperature)
        request = Request(
            messages=tuple(messages),
            model=model,
            max_tokens=max_tokens,
            default_temperature=0.0 if small else None,
        )
        started = time.perf_counter()
        texts = [m.text for m in used] if small and used else None
        focused = bool(texts) and SMALL_FOCUSED
        shown = CheckedStream(question, texts, on_text, ground=SMALL_GROUNDED, focused=focused)
        streamed = self._stream(request, prov.name, shown, started)
        answer, parts, usage, finish, first = shown.close(), *streamed
        if shown.deferred is not None and finish == "interrupted":
            answer = shown.release()  # stopped: what the model said is kept, as always
        elif shown.deferred is not None:
            # the value came from a neighbouring unit: ask again from the best units alone
            narrow = [
                dataclasses.replace(m, text=t)
                for m, t in zip(used, in_focus(question, texts or []), strict=True)
                if t
            ]
            # ``used`` is already in the order shown (the best last): kept as it is
            asked, narrow, _, _ = build_messages(
                question,
                narrow,
                history,
                budget=budget,
                count=prov.count_tokens,
                system_prompt=GROUNDED_PROMPT,
                unit_lines=SMALL_UNIT_LINES,
            )
            narrow_texts = [m.text for m in narrow]
            retry = dataclasses.replace(request, messages=tuple(asked))
            extra, more, more_usage, more_finish = self._held_back(
                retry, prov.name, question, narrow_texts, started
            )
            usage = usage + more_usage
            if (
                extra
                and more_finish != "interrupted"
                and not says_unknown(extra)
                and grounded(extra, question, narrow_texts)
                and not off_focus(extra, question, narrow_texts)
            ):
                if on_text is not None:
                    on_text(extra)
                answer, parts, finish, used, texts = extra, more, more_finish, narrow, narrow_texts
                messages, request = asked, retry
                notes.append(FOCUS_NOTE)
            else:
                answer = shown.release()
        if shown.replaced is not None:
            notes.append(UNGROUNDED_NOTE)
        if finish == "interrupted":
            notes.append("stopped by Ctrl-C; the partial answer was kept")
        elif small and texts and SMALL_RETRY and restates(answer, question):
            # the answer names what was asked about without its value: ask for the value,
            # and keep the second answer only when the memories hold what it adds
            cue = dataclasses.replace(messages[-1], content=f"{question}\n{RETRY_CUE}")
            again = dataclasses.replace(request, messages=(*messages[:-1], cue))
            extra, more, more_usage, more_finish = self._held_back(
                again, prov.name, question, texts, started
            )
            usage = usage + more_usage
            if extra and holds_new_terms(extra, question, texts):
                if on_text is not None:
                    on_text("\n" + extra)
                answer = f"{answer}\n{extra}"
                parts += ["\n", *more]
                finish = more_finish
                notes.append("the first answer named no value: asked once more for it")
        latency = (time.perf_counter() - started) * 1000
        note = None if shown.replaced is not None else citation_note("".join(parts).strip(), answer)
        if note:
            notes.append(note)
        cited = citations(answer, used)
        result = AskResult(
            answer=answer,
            provider=prov.name,
            model=model or prov.model,
            conversation_id=conv,
            memories=used,
            cited=cited,
            usage=usage,
            latency_ms=latency,
            first_token_ms=first,
            finish_reason=finish,
            notes=notes,
        )
        self._remember(question, result)
        return result

    def _held_back(
        self, request: Request, provider: str, question: str, texts: list[str], started: float
    ) -> tuple[str, list[str], Usage, str | None]:
        """A second answer, streamed unshown (the caller shows it only once it is kept):
        (answer, raw parts, usage, finish reason)."""
        second = CheckedStream(question, texts)
        parts, usage, finish, _ = self._stream(request, provider, second, started)
        return second.close(), parts, usage, finish

    def _stream(
        self, request: Request, provider: str, shown: CheckedStream, started: float
    ) -> tuple[list[str], Usage, str | None, float | None]:
        """Stream ``request`` into ``shown``: (raw parts, usage, finish reason, first token ms)."""
        parts: list[str] = []
        usage = Usage()
        finish: str | None = None
        first: float | None = None
        try:
            for chunk in self.llm.stream(request, provider=provider):
                if chunk.text:
                    if first is None:
                        first = (time.perf_counter() - started) * 1000
                    parts.append(chunk.text)
                    shown.feed(chunk.text)
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.finish_reason:
                    finish = chunk.finish_reason
        except KeyboardInterrupt:
            finish = "interrupted"
            if usage == Usage():  # stopped before the provider reported it: estimated
                with contextlib.suppress(MagrayError):  # (the provider already answered)
                    prov = self.llm.provider(provider)
                    usage = estimate_usage(prov, request.messages, "".join(parts))
        return parts, usage, finish, first

    def _remember(self, question: str, result: AskResult) -> None:
        self.log.record(
            Turn(
                conversation_id=result.conversation_id,
                at=time.time(),
                prompt=question,
                answer=result.answer,
                provider=result.provider,
                model=result.model,
                prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens,
                latency_ms=result.latency_ms,
                memories=tuple(result.cited),
                finish_reason=result.finish_reason,
            )
        )
        if self.memory is not None and result.answer:
            self.memory.remember(
                NewRecord(
                    text=f"Q: {question.strip()}\nA: {result.answer}",
                    layer=Layer.INTERACT,
                    kind=EXCHANGE,
                    session=result.conversation_id,
                )
            )
