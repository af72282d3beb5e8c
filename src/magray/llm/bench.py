"""`magray bench llm`: generation speed through MAGRAY's stack vs raw llama.cpp, same run.

Both sides use the same loaded model, the same rendered prompt, stop sequences, greedy
decoding and token budget, alternating runs so machine load hits both alike. MAGRAY's side
goes through the router (budget check, breaker, usage recording) and the local provider.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from magray.config import Settings
from magray.errors import UsageError
from magray.llm.base import Chunk, Message, Request

PROMPT = (
    Message(
        "system",
        "You are MAGRAY, a concise assistant. Answer from the numbered memories and cite them."
        "\n\nMemories:\n[1] MAGRAY keeps memories in three layers: Interact (session context,"
        " 24 h), Insights (distilled knowledge, 90 days) and Assets (permanent: ingested docs,"
        " code and facts). Records move up a layer when a scoring engine says they are worth"
        " keeping, and expire when their TTL passes.",
    ),
    Message("user", "Explain MAGRAY's memory layers in a few sentences."),
)


@dataclass(frozen=True, slots=True)
class RunStats:
    tokens: int
    seconds: float
    first_token_ms: float

    @property
    def tokens_per_s(self) -> float:
        """End to end: generated tokens over the whole call, prompt processing included."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        """Generation speed after the first token."""
        decode = self.seconds - self.first_token_ms / 1000
        return (self.tokens - 1) / decode if self.tokens > 1 and decode > 0 else 0.0


def _measure(chunks: Iterator[tuple[str, int | None]]) -> RunStats:
    started = time.perf_counter()
    first: float | None = None
    pieces = 0
    reported: int | None = None
    for text, usage_tokens in chunks:
        if text and first is None:
            first = time.perf_counter() - started
        if text:
            pieces += 1
        if usage_tokens is not None:
            reported = usage_tokens
    elapsed = time.perf_counter() - started
    return RunStats(reported if reported is not None else pieces, elapsed, (first or 0.0) * 1000)


def _summary(runs: list[RunStats]) -> dict[str, float]:
    return {
        "tokens_per_s": round(statistics.median(r.tokens_per_s for r in runs), 2),
        "decode_tokens_per_s": round(statistics.median(r.decode_tokens_per_s for r in runs), 2),
        "first_token_ms": round(statistics.median(r.first_token_ms for r in runs), 1),
        "tokens": round(statistics.median(r.tokens for r in runs), 1),
    }


def bench_llm(
    settings: Settings, *, provider: str | None = None, runs: int = 3, max_tokens: int = 64
) -> dict[str, Any]:
    """Median tokens/s and time to first token, MAGRAY vs raw llama.cpp, plus the prompt cache.

    Each timed run starts from an empty context (``reset``), so both sides process the
    whole prompt; ``prompt_tokens_per_s`` is the prompt over the time to first token. Then
    the prompt cache: the same system prompt with another question, after a warm call.
    """
    from magray.llm.local import LocalProvider
    from magray.llm.local_prompts import (
        CHAT_STOPS,
        STOPS,
        render_chat_messages,
        render_completion_prompt,
    )
    from magray.llm.router import Router

    if runs < 1 or max_tokens < 1:
        raise UsageError("--runs and --max-tokens must be at least 1.")
    router = Router(settings)
    local = router.provider(provider)
    if not isinstance(local, LocalProvider):
        raise UsageError(
            f"bench llm compares against raw llama.cpp, so it needs a local provider;"
            f" {local.name!r} is not one."
        )
    request = Request(messages=PROMPT, max_tokens=max_tokens, temperature=0.0)
    llm = local.llm
    chat = local.capabilities.chat_template
    prompt_tokens = local.count_tokens(PROMPT)

    def magray_side(req: Request = request) -> Iterator[tuple[str, int | None]]:
        chunk: Chunk
        for chunk in router.stream(req, provider=local.name):
            yield chunk.text, chunk.usage.completion_tokens if chunk.usage else None

    def raw_side() -> Iterator[tuple[str, int | None]]:
        produced = []
        if chat:
            parts = llm.create_chat_completion(
                messages=render_chat_messages(PROMPT),
                max_tokens=max_tokens,
                temperature=0.0,
                stop=list(CHAT_STOPS),
                stream=True,
            )
            texts = (p["choices"][0]["delta"].get("content") or "" for p in parts)
        else:
            parts = llm.create_completion(
                render_completion_prompt(PROMPT),
                max_tokens=max_tokens,
                temperature=0.0,
                stop=[*STOPS, "\n"],
                repeat_penalty=1.2,
                stream=True,
            )
            texts = (p["choices"][0]["text"] for p in parts)
        for text in texts:
            produced.append(text)
            yield text, None
        yield "", len(llm.tokenize("".join(produced).encode("utf-8"), add_bos=False))

    def cold(side: Iterator[tuple[str, int | None]]) -> RunStats:
        llm.reset()  # forget the previous prompt: measure full prompt processing
        return _measure(side)

    saved = local.prompt_cache
    local.prompt_cache = None  # cold means cold: no saved prefix on MAGRAY's side either
    list(raw_side())  # warm-up: page the weights in, fill caches
    ours: list[RunStats] = []
    raw: list[RunStats] = []
    for _ in range(runs):
        raw.append(cold(raw_side()))
        ours.append(cold(magray_side()))
    # the prompt cache: a warm call, then the same system prompt with another question
    other = Request(
        messages=(PROMPT[0], Message("user", "Which layer keeps ingested documents?")),
        max_tokens=max_tokens,
        temperature=0.0,
    )
    list(magray_side())
    cached = _measure(magray_side(other))
    # a fresh context with the stable prefix saved on disk (a new process's first call)
    local.prompt_cache = saved
    saved_prefix: dict[str, Any] = {}
    if saved is not None:
        llm.reset()
        list(magray_side())  # evaluates the prefix and saves it
        llm.reset()
        loaded = _measure(magray_side())
        saved_prefix = {
            "first_token_ms": round(loaded.first_token_ms, 1),
            "prefix_tokens": local.last_prefix.tokens,
            "source": local.last_prefix.source,
        }
    magray = _summary(ours)
    baseline = _summary(raw)
    for side, stats in ((magray, ours), (baseline, raw)):
        first = statistics.median(r.first_token_ms for r in stats) / 1000
        side["prompt_tokens_per_s"] = round(prompt_tokens / first, 1) if first > 0 else 0.0
    ratio = magray["tokens_per_s"] / baseline["tokens_per_s"] if baseline["tokens_per_s"] else 0.0
    return {
        "provider": local.name,
        "model": local.model,
        "chat_template": chat,
        "runs": runs,
        "max_tokens": max_tokens,
        "prompt_tokens": prompt_tokens,
        "magray": magray,
        "raw_llama_cpp": baseline,
        "ratio": round(ratio, 3),
        "target_ratio": 0.9,
        "cached_prompt": {
            "first_token_ms": round(cached.first_token_ms, 1),
            "cold_first_token_ms": magray["first_token_ms"],
        },
        "saved_prefix": saved_prefix,
    }
