"""Embedding speed: MAGRAY's full path against a raw ONNX Runtime session, same batches.

For each thread count the MAGRAY row times ``load_embedder(...).embed_documents`` (cache
off: tokenize, sort, pad, run, pool, normalise); the baseline feeds the very same
pre-tokenized, padded batches to a plain ``onnxruntime.InferenceSession`` and does nothing
else. The two are timed alternately and the best of ``repeat`` runs is kept, which keeps
the comparison fair on a busy machine.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from magray.config import Settings

DEFAULT_CORPUS = Path("../shared/data/scifact/corpus.jsonl")
_WORDS = [
    "memory",
    "layer",
    "agent",
    "terminal",
    "vector",
    "index",
    "search",
    "model",
    "token",
    "query",
    "record",
    "promote",
    "expire",
    "recall",
    "store",
    "embed",
    "rerank",
    "project",
    "session",
    "insight",
    "asset",
    "local",
    "fast",
    "small",
]


def bench_corpus(path: Path | None = None, limit: int = 512) -> list[str]:
    """``limit`` texts: SciFact title + text when the file exists, else generated sentences.

    A ``path`` given on purpose must be a readable BEIR ``corpus.jsonl``: a missing file, a
    folder or a line that is not a JSON object is an error, never a silent fallback.
    """
    from magray.errors import NotFoundError, UsageError

    if limit < 1:
        raise UsageError(f"--limit must be at least 1 text (got {limit}).")
    if path is not None and not path.is_file():
        if path.is_dir():
            raise UsageError(f"{path} is a folder; give its corpus.jsonl file to --corpus.")
        raise NotFoundError(f"no corpus file {path}; give a BEIR corpus.jsonl to --corpus.")
    path = path or DEFAULT_CORPUS
    if path.is_file():
        return _read_corpus(path, limit)
    out = []
    for i in range(limit):
        n = 8 + (i * 7) % 90
        out.append(" ".join(_WORDS[(i * 31 + j * 17) % len(_WORDS)] for j in range(n)) + ".")
    return out


def _read_corpus(path: Path, limit: int) -> list[str]:
    from magray.errors import UsageError

    texts: list[str] = []
    number = 0
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):  # noqa: B007  (named in the error)
                if not line.strip():
                    continue
                doc = json.loads(line)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                texts.append(f"{doc.get('title', '')} {doc.get('text', '')}".strip())
                if len(texts) >= limit:
                    break
    except UnicodeDecodeError:
        raise UsageError(
            f"{path} is not UTF-8 text; give a BEIR corpus.jsonl (one JSON object per line)"
            " to --corpus."
        ) from None
    except ValueError:
        raise UsageError(
            f"{path} line {number} is not a JSON object; give a BEIR corpus.jsonl (one JSON"
            " object per line) to --corpus."
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror or exc}); check the file.") from None
    if not texts:
        raise UsageError(f"{path} holds no documents; give a BEIR corpus.jsonl to --corpus.")
    return texts


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def bench_embed(
    settings: Settings,
    model: str | None = None,
    threads: Sequence[int] = (1, 2),
    *,
    texts: Sequence[str] | None = None,
    repeat: int = 3,
) -> dict[str, Any]:
    """Sentences per second of MAGRAY and of raw ONNX Runtime per thread count.

    Returns ``{"model", "texts", "rows": [{"threads", "magray_per_s", "raw_ort_per_s",
    "ratio"}], ...}`` with the last (largest) thread count's figures also at the top level.
    """
    import onnxruntime

    from magray.embed import load_embedder
    from magray.embed.onnx import OnnxEmbedder, feed_for, sorted_batches

    corpus = list(texts) if texts is not None else bench_corpus()
    rows: list[dict[str, Any]] = []
    name = model or settings.embed.model
    model_id = name
    quiet = logging.getLogger("magray")
    level = quiet.level
    for count in threads:
        quiet.setLevel(level)
        config = settings.with_overrides({"embed.threads": count})
        embedder = load_embedder(config, name, cached=False)
        assert isinstance(embedder, OnnxEmbedder)
        model_id = embedder.model_id
        encoded = embedder.tokenizer.encode(corpus)
        batches = [
            feed_for(embedder.session, embedder.tokenizer.pad([encoded[i] for i in rows_]))
            for rows_ in sorted_batches(encoded, embedder.batch_size)
        ]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = count
        options.log_severity_level = 3
        raw = onnxruntime.InferenceSession(
            str(embedder.session.path), sess_options=options, providers=[embedder.provider]
        )

        def run_magray(e: OnnxEmbedder = embedder) -> None:
            e.embed_documents(corpus)

        def run_raw(session: Any = raw, feeds: list[Any] = batches) -> None:
            for feed in feeds:
                session.run(None, feed)

        run_magray()  # warm up both (allocations, first-run optimisations)
        run_raw()
        quiet.setLevel(logging.ERROR)  # the truncation note was logged once by the warm-up
        magray_s, raw_s = float("inf"), float("inf")
        for _ in range(repeat):
            magray_s = min(magray_s, _best(run_magray, 1))
            raw_s = min(raw_s, _best(run_raw, 1))
        rows.append(
            {
                "threads": count,
                "magray_per_s": round(len(corpus) / magray_s, 2),
                "raw_ort_per_s": round(len(corpus) / raw_s, 2),
                "ratio": round(raw_s / magray_s, 3),
                "provider": embedder.provider,
            }
        )
    quiet.setLevel(level)
    top = rows[-1] if rows else {}
    return {
        "model": model_id,
        "texts": len(corpus),
        "tokens": sum(len(e.ids) for e in encoded) if rows else 0,
        "threads": top.get("threads"),
        "magray_per_s": top.get("magray_per_s"),
        "raw_ort_per_s": top.get("raw_ort_per_s"),
        "ratio": top.get("ratio"),
        "repeat": repeat,
        "rows": rows,
    }
