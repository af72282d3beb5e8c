"""The embedded local LLM: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

The default model is Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), installed by name on first use
(``magray.llm.local_install``); ``[llm.providers.local] model`` picks another catalogued
model (``qwen2.5-1.5b``, ``local-tiny``) and ``model_path`` any GGUF file. What the model can
do is read from the file, not guessed from its name: with a chat template, requests go
through it (and a JSON schema becomes a llama.cpp grammar on that path too); without one (a
base model such as Gemma 3 270M) they are rendered as a few-shot completion prompt with
stop sequences. Answers are capped in length, and the system prompt comes first so that
llama.cpp's prompt cache reuses it from one call to the next.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.errors import ConfigError, ModelNotInstalledError, ProviderError, ProviderResponseError
from magray.llm import llama_loader, status
from magray.llm.base import Capabilities, Chunk, Message, Request, Usage, temperature_for
from magray.llm.llama_loader import probe
from magray.llm.local_models import DEFAULT_LOCAL, LocalModel, find_local_model, model_for_file
from magray.llm.local_prompts import (
    CHAT_STOPS,
    STOPS,
    render_chat_messages,
    render_completion_prompt,
    stable_prefix,
)
from magray.llm.prompt_cache import PrefixUse, PromptCache

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.llm.config import ProviderConfig

log = logging.getLogger("magray")

DEFAULT_MODEL = DEFAULT_LOCAL.name
DEFAULT_MAX_TOKENS = 160  # base models: one answer line
CHAT_MAX_TOKENS = 384  # chat models: a few sentences, never a runaway answer
MIN_PLAN_CTX = 4096  # the planner's tool catalogue alone is ~2,000 tokens
MAX_AUTO_CTX = 8192  # what MAGRAY opens a chat model with unless n_ctx says otherwise
SMALL_MODEL_BYTES = 2_000_000_000  # under this a GGUF is a small model: grounded answers only
MESSAGE_OVERHEAD = 5  # chat-template tokens around each message
REPEAT_PENALTY = 1.2  # small base models loop without it


def _progress(message: str) -> None:
    status.report(message, always=True)


@dataclass(frozen=True, slots=True)
class _Resolved:
    path: Path
    entry: LocalModel | None
    label: str


def resolve_model(config: ProviderConfig, models_dir: Path, *, install: bool = True) -> _Resolved:
    """The GGUF a local provider runs: ``model_path``, else the catalogued ``model``."""
    from magray.llm.local_install import ensure_installed, model_path

    where = f"[llm.providers.{config.name}]"
    if config.model_path is not None:
        path = config.model_path
        if not path.is_file():
            raise ModelNotInstalledError(
                f"the local model file {path} does not exist; fix model_path of {where} in"
                " config.toml, or remove it to use the default model."
            )
        return _Resolved(path, model_for_file(path.name), config.model or path.stem)
    entry = find_local_model(config.model) if config.model else DEFAULT_LOCAL
    if entry is None:
        from magray.llm.local_models import LOCAL_MODELS

        known = ", ".join(m.name for m in LOCAL_MODELS)
        raise ConfigError(
            f"model {config.model!r} of {where} is not a model MAGRAY can install (known:"
            f" {known}); set model_path to a GGUF file to run another one."
        )
    if not install:
        return _Resolved(model_path(entry, models_dir), entry, entry.name)
    path = ensure_installed(entry, models_dir, progress=_progress)
    return _Resolved(path, entry, entry.name)


class LocalProvider:
    """An in-process llama.cpp model, configured by ``[llm.providers.NAME]`` (type local)."""

    def __init__(self, config: ProviderConfig, settings: Settings) -> None:
        resolved = resolve_model(config, settings.paths.models_dir)
        self._name = config.name
        self._path = resolved.path
        self._entry = resolved.entry
        self._model = resolved.label
        self._config_ctx = config.n_ctx
        self._threads = config.threads or max(1, min(os.cpu_count() or 1, 4))
        self._max_tokens = config.max_tokens
        self._temperature = config.temperature  # None: the request's default, else 0.2
        self._timeout = config.timeout
        self.prompt_cache: PromptCache | None = PromptCache(
            settings.paths.data_dir / "prompt-cache", self._path, config.prompt_cache_mb << 20
        )
        #: how the last call's stable prefix was made ready (tests and benchmarks read it)
        self.last_prefix = PrefixUse(0, "none")

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    @property
    def path(self) -> Path:
        return self._path

    @property
    def supports_tools(self) -> bool:
        return False

    def _chat(self) -> bool:
        if self._entry is not None:
            return self._entry.chat
        return probe(self._path)[1]

    @property
    def context_window(self) -> int:
        """``n_ctx`` when configured, else what the model was trained for, capped.

        Chat models get at least ``MIN_PLAN_CTX`` so the planner's prompt fits.
        """
        if self._config_ctx:
            return self._config_ctx
        if self._entry is not None:
            return self._entry.n_ctx
        trained, chat = probe(self._path)
        floor = MIN_PLAN_CTX if chat else 2048
        return max(floor, min(trained or floor, MAX_AUTO_CTX))

    @property
    def capabilities(self) -> Capabilities:
        """Read from the model: a chat template or not; a grammar always; no native tools."""
        return Capabilities(
            chat_template=self._chat(),
            json_schema=True,
            native_tools=False,
            context_window=self.context_window,
            streaming=True,
            small=self._path.stat().st_size < SMALL_MODEL_BYTES,
        )

    @property
    def llm(self) -> Any:
        return llama_loader.load(self._path, self.context_window, self._threads)

    def _tokens(self, text: str, *, bos: bool = False) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=True))

    def count_tokens(self, messages: Sequence[Message]) -> int:
        if not self._chat():
            return self._tokens(render_completion_prompt(messages), bos=True)
        chat = render_chat_messages(messages)
        return sum(self._tokens(m["content"]) + MESSAGE_OVERHEAD for m in chat) + 3

    def _cap(self, request: Request, prompt_tokens: int, default: int) -> int:
        """The answer's token budget: asked, configured or default, within the context."""
        wanted = request.max_tokens or self._max_tokens or default
        room = self.context_window - prompt_tokens
        if room < 16:
            raise ProviderError(
                f"the prompt ({prompt_tokens} tokens) leaves no room for an answer in the"
                f" model's context ({self.context_window}); raise n_ctx of"
                f" [llm.providers.{self._name}] or shorten the prompt."
            )
        return max(1, min(wanted, room))

    def stream(self, request: Request) -> Iterator[Chunk]:
        llm = self.llm
        temperature = temperature_for(request, self._temperature)
        if temperature is None:
            temperature = 0.2
        timeout = request.timeout or self._timeout
        grammar = llama_loader.grammar(request.json_schema) if request.json_schema else None
        status.report("thinking (reading the prompt)", transient=True)
        started = time.monotonic()
        if request.completion:
            prompt = "\n\n".join(m.content for m in request.messages if m.role != "assistant")
            prompt_tokens = self._tokens(prompt, bos=True)
            parts = llm.create_completion(
                prompt,
                max_tokens=self._cap(request, prompt_tokens, DEFAULT_MAX_TOKENS),
                temperature=temperature,
                stop=list(request.stop) or None,
                grammar=grammar,
                stream=True,
            )
            key = "text"
        elif self._chat():
            chat = render_chat_messages(request.messages)
            prompt_tokens = sum(self._tokens(m["content"]) + MESSAGE_OVERHEAD for m in chat) + 3
            self._prime(llm, chat)
            parts = llm.create_chat_completion(
                messages=chat,
                max_tokens=self._cap(request, prompt_tokens, CHAT_MAX_TOKENS),
                temperature=temperature,
                stop=list(dict.fromkeys([*CHAT_STOPS, *request.stop])),
                grammar=grammar,
                stream=True,
            )
            key = "delta"
        else:
            prompt = render_completion_prompt(request.messages)
            prompt_tokens = self._tokens(prompt, bos=True)
            self._prime(llm, None, prompt)
            stops = list(dict.fromkeys([*STOPS, *request.stop]))
            parts = llm.create_completion(
                prompt,
                max_tokens=self._cap(request, prompt_tokens, DEFAULT_MAX_TOKENS),
                temperature=temperature,
                stop=[*stops, "\n"],  # the few-shot answers are one line each
                repeat_penalty=REPEAT_PENALTY,
                grammar=grammar,
                stream=True,
            )
            key = "text"
        yield from self._relay(parts, key, prompt_tokens, started, timeout)

    def _prime(self, llm: Any, chat: list[dict[str, str]] | None, prompt: str = "") -> None:
        """Have the prompt's stable prefix in the context before the call: kept from the
        last call, loaded from the prompt cache or evaluated and saved (never fails it)."""
        self.last_prefix = PrefixUse(0, "none")
        if self.prompt_cache is None:
            return
        try:
            prefix = stable_prefix(llm, chat, prompt)
            self.last_prefix = self.prompt_cache.prime(llm, prefix)
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            log.warning("prompt cache: not used for this call (%s)", exc)
            llm.reset()

    def _relay(
        self, parts: Any, key: str, prompt_tokens: int, started: float, timeout: float | None
    ) -> Iterator[Chunk]:
        produced: list[str] = []
        finish: str | None = None
        try:
            for part in parts:
                try:
                    choice = part["choices"][0]
                    text = choice[key].get("content", "") if key == "delta" else choice["text"]
                except (KeyError, IndexError, AttributeError, TypeError):
                    raise ProviderResponseError("llama.cpp returned a malformed chunk.") from None
                finish = choice.get("finish_reason") or finish
                if text:
                    if not produced:
                        status.done()  # the first words: the wait is over
                    produced.append(text)
                    yield Chunk(text=text)
                if timeout is not None and time.monotonic() - started > timeout:
                    finish = "timeout"
                    break
        finally:
            status.done()
            close = getattr(parts, "close", None)
            if close is not None:
                close()
        completion_tokens = self._tokens("".join(produced))
        yield Chunk(usage=Usage(prompt_tokens, completion_tokens), finish_reason=finish or "stop")
