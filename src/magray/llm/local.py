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

import atexit
import contextlib
import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.errors import ConfigError, ModelNotInstalledError, ProviderError, ProviderResponseError
from magray.llm import status
from magray.llm.base import Capabilities, Chunk, Message, Request, Usage, temperature_for
from magray.llm.local_models import DEFAULT_LOCAL, LocalModel, find_local_model, model_for_file
from magray.llm.prompt_cache import PrefixUse, PromptCache, common_prefix

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
STOPS = ("\nQuestion:", "\nNotes:", "\nUser:", "\n[", "\n\n\n")
CHAT_STOPS = ("<|im_end|>", "<|endoftext|>")

FEW_SHOT = """Questions answered from numbered notes, citing the note used.

Notes:
[1] The Eiffel Tower in Paris was completed in 1889 for the World's Fair.
[2] Bananas are rich in potassium.
Question: When was the Eiffel Tower finished?
Answer: It was completed in 1889, for the World's Fair [1].

Notes:
[1] Run `make test` to lint the project and run the test suite.
Question: How do I run the tests?
Answer: Run `make test`; it lints the code and runs the whole suite [1].
"""

_load_lock = threading.Lock()
_loaded: dict[tuple[str, int, int], Any] = {}
_probed: dict[str, tuple[int, bool]] = {}
_grammars: dict[str, Any] = {}
_formatters: dict[tuple[int, bool], Any] = {}


@atexit.register
def _close_models() -> None:
    """Free loaded models before interpreter teardown (their finalizers fail after it)."""
    with _load_lock:
        for llm in _loaded.values():
            close = getattr(llm, "close", None)
            if close is not None:
                close()
        _loaded.clear()
        _formatters.clear()


def _llama_cpp() -> Any:
    """Import llama.cpp's bindings, with OpenMP threads that sleep instead of spinning."""
    # Busy-waiting OpenMP workers collapse generation speed on a shared machine; the
    # variable must be set before the library loads, so MAGRAY sets it, not only make.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import llama_cpp
    except ImportError:
        raise ProviderError(
            "the local provider needs llama-cpp-python; run `pip install 'magray[local]'`."
        ) from None
    return llama_cpp


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            return any(line.startswith("flags") and " amx_int8" in line for line in fh)
    except OSError:
        return False


@contextlib.contextmanager
def _plain_cpu_buffers(llama_cpp: Any) -> Iterator[None]:
    """Load weights without llama.cpp's AMX buffers on CPUs that have AMX.

    llama.cpp's AMX matrix multiply crashes (a segfault on the first decode) with Q4_K
    weights on some AMX machines; plain CPU buffers avoid it at a small cost in speed.
    """
    bindings = llama_cpp.llama_cpp
    original = bindings.llama_model_default_params
    if not _cpu_has_amx() or os.environ.get("MAGRAY_LLAMA_EXTRA_BUFFERS") == "1":
        yield
        return

    def params() -> Any:
        made = original()
        made.use_extra_bufts = False
        return made

    bindings.llama_model_default_params = params
    try:
        yield
    finally:
        bindings.llama_model_default_params = original


def _construct(path: Path, **kwargs: Any) -> Any:
    llama_cpp = _llama_cpp()
    # llama.cpp's log callback prints some notices (e.g. about its KV cache) to
    # sys.stderr even when quiet; MAGRAY reports failures as its own errors instead.
    try:
        with contextlib.redirect_stderr(io.StringIO()), _plain_cpu_buffers(llama_cpp):
            return llama_cpp.Llama(model_path=str(path), verbose=False, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise ProviderError(f"llama.cpp could not load {path} ({exc}).") from None


def probe(path: Path) -> tuple[int, bool]:
    """(trained context length, has a chat template), read from the GGUF's header."""
    from magray.llm.gguf import read_info

    key = str(path)
    if key not in _probed:
        info = read_info(path)
        _probed[key] = (info.context_length, info.chat_template is not None)
    return _probed[key]


def _load(path: Path, n_ctx: int, threads: int) -> Any:
    key = (str(path), n_ctx, threads)
    with _load_lock:
        if key not in _loaded:
            status.report(f"loading the local model {path.name}")
            _loaded[key] = _construct(path, n_ctx=n_ctx, n_threads=threads)
        return _loaded[key]


def _grammar(schema: Mapping[str, Any]) -> Any:
    """A llama.cpp grammar for JSON matching ``schema`` (compiled once per schema)."""
    # The grammar writes properties in the schema's order (``tool`` before ``args``: the
    # model decides what to do before how), so the text compiled keeps it; sorted keys
    # would make a model fill in arguments before naming the tool they belong to.
    key = json.dumps(schema)
    with _load_lock:
        if key not in _grammars:
            _llama_cpp()
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                _grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
            except (ValueError, RuntimeError, KeyError) as exc:
                raise ProviderError(
                    f"llama.cpp could not compile the JSON schema ({exc})."
                ) from None
        return _grammars[key]


def render_completion_prompt(messages: Sequence[Message]) -> str:
    """A few-shot completion prompt for base models: notes, earlier turns, the question."""
    system = "\n".join(m.content for m in messages if m.role == "system")
    notes = ""
    if "Memories:" in system:
        notes = system[system.index("Memories:") + len("Memories:") :].strip()
    parts = [FEW_SHOT, "", "Notes:", notes or "(none)"]
    turns = [m for m in messages if m.role in ("user", "assistant")]
    for m in turns:
        if m.role == "user":
            parts.append(f"Question: {' '.join(m.content.split())}")
        else:
            parts.append(f"Answer: {' '.join(m.content.split())}")
    parts.append("Answer:")
    return "\n".join(parts)


#: worked examples a small chat model reads before every grounded question (a stable
#: prefix: llama.cpp's prompt cache keeps it, so it costs the first call only)
CHAT_SHOTS: tuple[tuple[str, str], ...] = (
    (
        "Memories:\n[1] The Eiffel Tower in Paris was completed in 1889 for the World's Fair."
        "\n[2] Bananas are rich in potassium.\n\nQuestion: When was the Eiffel Tower finished?",
        "According to [1], it was completed in 1889, for the World's Fair.",
    ),
    (
        "Memories:\n[1] Run `make test` to lint the project and run the test suite.\n"
        "[2] The canteen serves three menus: vegetarian, fish and meat.\n\n"
        "Question: Who wrote the deploy script?",
        "I don't know.",
    ),
    (
        "Memories:\n[1] The deploy script lives in scripts/deploy.sh.\n[2] Bananas are rich in"
        " potassium.\n\nQuestion: What is the capital of Italy?",
        "I don't know.",
    ),
    (
        "Memories:\n[1] The office is open Monday to Friday.\n[2] The canteen serves three"
        " menus: vegetarian, fish and meat.\n\nQuestion: Which menus does the canteen have?",
        "According to [2], there are three: vegetarian, fish and meat.",
    ),
)


CHAT_CUE = "(Answer from the memories only, citing the one you use, or say I don't know.)"


def render_chat_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Chat messages for a small local model: rules, worked examples, then the question.

    A system message carrying ``Memories:`` (a grounded question) is split: its rules stay
    first (a stable prefix for the prompt cache), worked examples follow, and the memories
    move next to the question, where a small model heeds them. Others pass unchanged.
    """
    system = "\n".join(m.content for m in messages if m.role == "system")
    rest = [m for m in messages if m.role != "system"]
    if "Memories:" not in system or not rest or rest[-1].role != "user":
        return [{"role": m.role, "content": m.content} for m in messages]
    rules, notes = system.split("Memories:", 1)
    out = [{"role": "system", "content": rules.strip()}]
    for question, answer in CHAT_SHOTS:
        out.append({"role": "user", "content": f"{question}\n{CHAT_CUE}"})
        out.append({"role": "assistant", "content": answer})
    out += [{"role": m.role, "content": m.content} for m in rest[:-1]]
    question = f"Memories:\n{notes.strip()}\n\nQuestion: {rest[-1].content.strip()}\n{CHAT_CUE}"
    out.append({"role": "user", "content": question})
    return out


def stable_messages(chat: Sequence[Mapping[str, str]]) -> int:
    """How many leading messages of ``chat`` are the same from call to call: the system
    prompt, and the worked examples ``render_chat_messages`` adds after it (never all)."""
    n = 0
    while n < len(chat) and chat[n]["role"] == "system":
        n += 1
    for question, answer in CHAT_SHOTS:
        shot = [
            {"role": "user", "content": f"{question}\n{CHAT_CUE}"},
            {"role": "assistant", "content": answer},
        ]
        if [dict(m) for m in chat[n : n + 2]] != shot:
            break
        n += 2
    return n if n < len(chat) else 0


def _formatter(llm: Any, generation: bool) -> Any | None:
    """The chat formatter ``create_chat_completion`` uses for a GGUF's own template."""
    if getattr(llm, "chat_handler", None) is not None:
        return None
    if getattr(llm, "chat_format", None) != "chat_template.default":
        return None
    key = (id(llm), generation)
    if key not in _formatters:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def text(token: int) -> str:
            if token == -1:
                return ""
            return bytes(llm.detokenize([token], special=True)).decode("utf-8", "replace")

        _formatters[key] = Jinja2ChatFormatter(
            template=llm.metadata["tokenizer.chat_template"],
            eos_token=text(llm.token_eos()),
            bos_token=text(llm.token_bos()),
            add_generation_prompt=generation,
        )
    return _formatters[key]


def _chat_tokens(llm: Any, chat: Sequence[Mapping[str, str]], generation: bool) -> list[int]:
    """``chat`` as the tokens llama.cpp's chat path reads (empty: not known)."""
    formatter = _formatter(llm, generation)
    if formatter is None:
        return []
    result = formatter(messages=[dict(m) for m in chat])
    prompt = str(result.prompt).encode("utf-8")
    return list(llm.tokenize(prompt, add_bos=not result.added_special, special=True))


def stable_prefix(
    llm: Any, chat: Sequence[Mapping[str, str]] | None, prompt: str = ""
) -> list[int]:
    """The tokens a chat (or a few-shot ``prompt``) shares with every call like it."""
    if chat is not None:
        n = stable_messages(chat)
        if n == 0:
            return []
        prefix = _chat_tokens(llm, chat[:n], False)
        full = _chat_tokens(llm, chat, True)
    elif prompt.startswith(FEW_SHOT):
        prefix = list(llm.tokenize(FEW_SHOT.encode("utf-8"), add_bos=True, special=True))
        full = list(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
    else:
        return []
    return full[: common_prefix(prefix, full)]


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
        return _load(self._path, self.context_window, self._threads)

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
        grammar = _grammar(request.json_schema) if request.json_schema else None
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
