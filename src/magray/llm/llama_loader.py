"""Loading llama.cpp and its models: one copy of each GGUF per process, grammars compiled
once, OpenMP threads that sleep, and the AMX workaround.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from magray.errors import ProviderError
from magray.llm import status

_load_lock = threading.Lock()
_loaded: dict[tuple[str, int, int], Any] = {}
_probed: dict[str, tuple[int, bool]] = {}
_grammars: dict[str, Any] = {}
#: chat formatters per loaded model (``local_prompts``); freed with the models
chat_formatters: dict[tuple[int, bool], Any] = {}


@atexit.register
def _close_models() -> None:
    """Free loaded models before interpreter teardown (their finalizers fail after it)."""
    with _load_lock:
        for llm in _loaded.values():
            close = getattr(llm, "close", None)
            if close is not None:
                close()
        _loaded.clear()
        chat_formatters.clear()


def llama_cpp_module() -> Any:
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
    llama_cpp = llama_cpp_module()
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


def load(path: Path, n_ctx: int, threads: int) -> Any:
    key = (str(path), n_ctx, threads)
    with _load_lock:
        if key not in _loaded:
            status.report(f"loading the local model {path.name}")
            _loaded[key] = _construct(path, n_ctx=n_ctx, n_threads=threads)
        return _loaded[key]


def grammar(schema: Mapping[str, Any]) -> Any:
    """A llama.cpp grammar for JSON matching ``schema`` (compiled once per schema)."""
    # The grammar writes properties in the schema's order (``tool`` before ``args``: the
    # model decides what to do before how), so the text compiled keeps it; sorted keys
    # would make a model fill in arguments before naming the tool they belong to.
    key = json.dumps(schema)
    with _load_lock:
        if key not in _grammars:
            llama_cpp_module()
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                _grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
            except (ValueError, RuntimeError, KeyError) as exc:
                raise ProviderError(
                    f"llama.cpp could not compile the JSON schema ({exc})."
                ) from None
        return _grammars[key]
