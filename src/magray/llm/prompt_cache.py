"""Saved prompt prefixes: llama.cpp's state after a stable system prompt, kept on disk.

A fresh process has an empty llama.cpp context, so its first call reads the whole prompt:
the planner's rules and tool catalogue (~700 tokens) or ``ask``'s rules and worked examples
cost seconds before the first token on a CPU. The state after evaluating such a prefix is
saved to ``<data>/prompt-cache/`` and loaded by the next process instead of evaluating the
prefix again; llama.cpp then reads only what follows it.

A file is named by a hash of everything the state depends on: the model file (its size,
modification time and first and last MiB), the exact prefix tokens, the context size and
batch size, and the llama-cpp-python version. Its header repeats the key and holds the
payload's sha256, so a mismatched, truncated or corrupt file is never loaded: it is removed
with a one-line warning and built again. Files are written atomically and the folder is
kept under a size limit, least recently used first. Nothing here ever fails a call: any
error leaves the prompt to be read the ordinary way.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("magray")

MAGIC = b"MAGRAY-PROMPT-PREFIX 1\n"
SUFFIX = ".prefix"
MIN_PREFIX_TOKENS = 32  # shorter prefixes read faster than a file loads
_SAMPLE = 1 << 20  # bytes of the model file's head and tail that go into its identity


@dataclass(frozen=True, slots=True)
class PrefixUse:
    """How a call's stable prefix was made ready: ``memory`` (already in the context),
    ``disk`` (loaded from a saved file), ``built`` (evaluated now, then saved) or ``none``."""

    tokens: int
    source: str


def model_identity(path: Path) -> str:
    """A cheap fingerprint of a model file: size, modification time, first and last MiB."""
    stat = path.stat()
    digest = hashlib.sha256(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    with path.open("rb") as fh:
        digest.update(fh.read(_SAMPLE))
        fh.seek(max(0, stat.st_size - _SAMPLE))
        digest.update(fh.read(_SAMPLE))
    return digest.hexdigest()


def common_prefix(a: Any, b: Any) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if int(x) != int(y):
            break
        n += 1
    return n


class PromptCache:
    """Saved prefix states of one model, in ``folder``, at most ``limit_bytes`` together."""

    def __init__(self, folder: Path, model: Path, limit_bytes: int) -> None:
        self.folder = folder
        self.model = model
        self.limit_bytes = limit_bytes
        self._identity: str | None = None

    def key(self, llm: Any, tokens: list[int]) -> dict[str, Any]:
        """What a saved state depends on (a file whose header differs is not loaded)."""
        import llama_cpp

        if self._identity is None:
            self._identity = model_identity(self.model)
        return {
            "model": self._identity,
            "n_ctx": int(llm.n_ctx()),
            "n_batch": int(llm.n_batch),
            "llama_cpp": str(getattr(llama_cpp, "__version__", "?")),
            "tokens": hashlib.sha256(
                b"".join(int(t).to_bytes(4, "little", signed=True) for t in tokens)
            ).hexdigest(),
            "n_tokens": len(tokens),
        }

    def file_for(self, key: dict[str, Any]) -> Path:
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        return self.folder / f"{name}{SUFFIX}"

    def prime(self, llm: Any, prefix: list[int]) -> PrefixUse:
        """Make ``llm``'s context hold ``prefix``: kept when it already does, else loaded
        from a saved file, else evaluated and saved. Never raises for a cache problem."""
        if self.limit_bytes <= 0 or len(prefix) < MIN_PREFIX_TOKENS:
            return PrefixUse(0, "none")
        if len(prefix) >= int(llm.n_ctx()):
            return PrefixUse(0, "none")
        held = common_prefix(llm.input_ids[: llm.n_tokens], prefix)
        if held == len(prefix):
            return PrefixUse(held, "memory")
        try:
            key = self.key(llm, prefix)
        except OSError as exc:
            log.warning("prompt cache: cannot read the model file (%s); not saving prefixes", exc)
            return PrefixUse(0, "none")
        path = self.file_for(key)
        if path.exists() and self._load(llm, path, key, prefix):
            return PrefixUse(len(prefix), "disk")
        llm.n_tokens = held  # llama.cpp drops the rest of the context on the next eval
        llm.eval(prefix[held:])
        self._save(llm, path, key)
        return PrefixUse(len(prefix), "built")

    def _load(self, llm: Any, path: Path, key: dict[str, Any], prefix: list[int]) -> bool:
        import llama_cpp
        import numpy as np

        try:
            blob = path.read_bytes()
            if not blob.startswith(MAGIC):
                raise ValueError("not a MAGRAY prompt-prefix file")
            head_end = blob.index(b"\n", len(MAGIC))
            header = json.loads(blob[len(MAGIC) : head_end])
            payload = memoryview(blob)[head_end + 1 :]
            if header.get("key") != key:
                raise ValueError("saved for another model, prompt or context size")
            if header.get("sha256") != hashlib.sha256(payload).hexdigest():
                raise ValueError("its content does not match its checksum")
            n = len(prefix)
            tokens = np.frombuffer(payload[: 4 * n], dtype="<i4")
            if len(tokens) != n or list(tokens) != prefix:
                raise ValueError("its tokens differ from the prompt's")
            state = bytes(payload[4 * n :])
            ids = np.zeros(llm.input_ids.shape, dtype=np.intc)
            ids[:n] = prefix
            llm.load_state(
                llama_cpp.LlamaState(
                    input_ids=ids,
                    scores=np.zeros((1, llm.n_vocab()), dtype=np.single),
                    n_tokens=n,
                    llama_state=state,
                    llama_state_size=len(state),
                    seed=int(header.get("seed", 0)) or llama_cpp.LLAMA_DEFAULT_SEED,
                )
            )
        except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
            log.warning("prompt cache: ignored %s (%s); building it again", path.name, exc)
            llm.reset()  # whatever was half loaded is dropped by the next eval
            with contextlib.suppress(OSError):
                path.unlink()
            return False
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return True

    def _save(self, llm: Any, path: Path, key: dict[str, Any]) -> None:
        import llama_cpp

        from magray.fileio import write_atomic

        try:
            size = int(llama_cpp.llama_state_get_size(llm.ctx))
            if size + 4 * llm.n_tokens > self.limit_bytes:
                return
            buffer = (ctypes.c_uint8 * size)()
            written = int(llama_cpp.llama_state_get_data(llm.ctx, buffer, size))
            if written <= 0 or written > size:
                return
            tokens = b"".join(
                int(t).to_bytes(4, "little", signed=True) for t in llm.input_ids[: llm.n_tokens]
            )
            payload = tokens + bytes(buffer)[:written]
            header = {
                "key": key,
                "sha256": hashlib.sha256(payload).hexdigest(),
                "seed": int(getattr(llm, "_seed", 0) or 0),
            }
            write_atomic(path, MAGIC + json.dumps(header).encode() + b"\n" + payload)
            self._evict(keep=path)
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("prompt cache: could not save %s (%s)", path.name, exc)

    def _evict(self, keep: Path) -> None:
        """Remove the least recently used files until the folder fits the limit."""
        files = []
        for p in self.folder.glob(f"*{SUFFIX}"):
            with contextlib.suppress(OSError):
                stat = p.stat()
                files.append((stat.st_mtime_ns, stat.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files):
            if total <= self.limit_bytes:
                break
            if p == keep:
                continue
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size
