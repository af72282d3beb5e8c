"""Conversational-memory benchmark on LoCoMo: the paper's turn-level recall per category.

Each conversation gets a fresh store in a temporary folder with one ``turn`` record per
turn (``Speaker said, "text"``, its session as ``session``, the session's date as event
time). Every question with evidence is asked through ``Memory.recall`` with k = 50 in each
mode; recall@k is the fraction of its evidence dia_ids among the top k (malformed evidence
never matches and stays in the denominator), averaged per category and over all questions.
Session level: sessions ranked by their best turn; Hit@1 says whether the first holds
evidence, R@5 is the fraction of evidence sessions among the first five.

Query vectors are computed in one batch first and handed to recall through an embedder
seam, so the timed recall excludes query embedding; document vectors come from the
embedding cache on reruns.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from magray.bench.locomo_data import CATEGORIES, Conversation
from magray.config import Settings
from magray.embed.base import Embedder
from magray.errors import UsageError
from magray.hashing import content_hash
from magray.memory.records import Layer, NewRecord, Query, SearchMode, Source
from magray.memory.service import Memory

KS = (5, 10, 25, 50)
DEPTH = max(KS)
TURN_KIND = "turn"
# mode → (search mode, settings that differ from the defaults)
PLAIN = {"search.context_weight": 0.0, "search.session_weight": 0.0, "search.time_weight": 0.0}
MODES: dict[str, tuple[SearchMode, dict[str, Any]]] = {
    "keyword": (SearchMode.KEYWORD, PLAIN),
    "vector": (SearchMode.VECTOR, PLAIN),
    "hybrid": (SearchMode.HYBRID, PLAIN),
    "context": (SearchMode.HYBRID, {}),  # the default ranking: hybrid plus context
}
F32 = npt.NDArray[np.float32]
_DIA = re.compile(r"D(\d+):")


class _KnownQueries:
    """An embedder seam: query vectors computed beforehand, documents from the real model."""

    def __init__(self, inner: Embedder, table: dict[str, F32]) -> None:
        self.inner = inner
        self.table = table

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_documents(self, texts: Sequence[str]) -> F32:
        return np.asarray(self.inner.embed_documents(texts), dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> F32:
        return np.vstack([self.table[t] for t in texts]).astype(np.float32)


def _session_of(dia_id: str) -> int | None:
    m = _DIA.match(dia_id)
    return int(m.group(1)) if m else None


@dataclass
class _Tally:
    """Sums of one mode's recalls, per category."""

    sums: dict[int, list[float]]
    counts: dict[int, int]
    hit1: float = 0.0
    session_r5: float = 0.0
    n: int = 0

    def add(self, category: int, recalls: list[float], hit1: float, sr5: float) -> None:
        row = self.sums.setdefault(category, [0.0] * len(KS))
        for i, value in enumerate(recalls):
            row[i] += value
        self.counts[category] = self.counts.get(category, 0) + 1
        self.hit1 += hit1
        self.session_r5 += sr5
        self.n += 1

    def as_json(self) -> dict[str, Any]:
        def row(sums: Sequence[float], n: int) -> dict[str, float]:
            return {
                f"r@{k}": round(100.0 * s / max(n, 1), 1) for k, s in zip(KS, sums, strict=True)
            }

        total = [sum(r[i] for r in self.sums.values()) for i in range(len(KS))]
        return {
            "overall": row(total, self.n),
            "categories": {
                CATEGORIES.get(c, str(c)): {
                    **row(self.sums[c], self.counts[c]),
                    "questions": self.counts[c],
                }
                for c in sorted(self.sums)
            },
            "session": {
                "hit@1": round(self.hit1 / max(self.n, 1), 3),
                "r@5": round(100.0 * self.session_r5 / max(self.n, 1), 1),
            },
        }


def score_ranking(
    ranked: Sequence[str], evidence: Sequence[str]
) -> tuple[list[float], float, float]:
    """Turn recall@KS, session Hit@1 and session recall@5 of one ranked list of dia_ids."""
    recalls = [sum(e in ranked[:k] for e in evidence) / len(evidence) for k in KS]
    wanted = {s for e in evidence if (s := _session_of(e)) is not None}
    sessions = list(dict.fromkeys(s for d in ranked if (s := _session_of(d)) is not None))
    hit1 = float(bool(sessions) and sessions[0] in wanted)
    sr5 = len(wanted & set(sessions[:5])) / len(wanted) if wanted else 0.0
    return recalls, hit1, sr5


def _store_turns(
    memory: Memory, conv: Conversation, *, plain: bool = False
) -> dict[str, list[str]]:
    """One record per turn; ``plain`` leaves out what a conversation adds (session, time)."""
    items = [
        NewRecord(
            text=t.text,
            layer=Layer.ASSETS,
            kind=TURN_KIND,
            session=None if plain else f"{conv.id}:{t.session}",
            source=Source(t.dia_id),
            occurred_at=None if plain else t.at,
        )
        for t in conv.turns
    ]
    memory.remember_many(items)
    memory.sync_indexes()
    by_hash: dict[str, list[str]] = {}
    for t in conv.turns:
        by_hash.setdefault(content_hash(t.text), []).append(t.dia_id)
    return by_hash


def store_bytes(folder: Path) -> int:
    """Bytes of a closed memory store on disk (database and index files; no embedding cache)."""
    return sum(
        f.stat().st_size
        for f in folder.rglob("*")
        if f.is_file() and not f.name.startswith("embed-cache")
    )


def _plain_store_bytes(settings: Settings, conv: Conversation, embedder: Embedder) -> int:
    """Bytes of the same turns stored as plain records: no session, no event time."""
    with tempfile.TemporaryDirectory(prefix="magray-locomo-plain-") as folder:
        base = replace(settings, paths=replace(settings.paths, data_dir=Path(folder)))
        base = base.with_overrides({"memory.auto_lifecycle": False}, source="bench")
        with Memory(base, embedder=embedder) as memory:
            _store_turns(memory, conv, plain=True)
        return store_bytes(Path(folder))


def run_locomo(
    settings: Settings,
    conversations: Sequence[Conversation],
    embedder: Embedder,
    modes: Sequence[str] = (),
    progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Score every mode on every conversation (a fresh store each) and return the report."""
    chosen = list(dict.fromkeys(modes)) or list(MODES)
    for mode in chosen:
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}.")
    tallies = {m: _Tally({}, {}) for m in chosen}
    latencies: dict[str, list[float]] = {m: [] for m in chosen}
    records = questions = 0
    stores: list[dict[str, Any]] = []
    for done, conv in enumerate(conversations):
        asked = [q for q in conv.questions if q.evidence]
        texts = list(dict.fromkeys(q.text for q in asked))
        vectors = embedder.embed_queries(texts) if texts else np.zeros((0, embedder.dim))
        table = {t: np.asarray(v, dtype=np.float32) for t, v in zip(texts, vectors, strict=True)}
        seam = _KnownQueries(embedder, table)
        with tempfile.TemporaryDirectory(prefix="magray-locomo-") as folder:
            base = replace(settings, paths=replace(settings.paths, data_dir=Path(folder)))
            base = base.with_overrides({"memory.auto_lifecycle": False}, source="bench")
            with Memory(base, embedder=seam) as memory:
                by_hash = _store_turns(memory, conv)
                count = memory.backend.count()
            records += count
            size = store_bytes(Path(folder))  # closed: the write-ahead log is checkpointed
            plain = _plain_store_bytes(settings, conv, seam)
            times: dict[str, list[float]] = {}
            for mode in chosen:
                search_mode, overrides = MODES[mode]
                config = base.with_overrides(overrides, source="bench") if overrides else base
                with Memory(config, embedder=seam) as memory:
                    for q in asked:
                        query = Query(text=q.text, k=DEPTH, mode=search_mode)
                        started = time.perf_counter()
                        hits = memory.recall(query, record_access=False)
                        took = 1000.0 * (time.perf_counter() - started)
                        latencies[mode].append(took)
                        times.setdefault(mode, []).append(took)
                        ranked = [d for h in hits for d in by_hash.get(h.record.content_hash, [])]
                        tallies[mode].add(q.category, *score_ranking(ranked, q.evidence))
        questions += len(asked)
        stores.append(
            {
                "conversation": conv.id,
                "records": count,
                "bytes_per_record": round(size / max(count, 1)),
                "plain_bytes_per_record": round(plain / max(count, 1)),
                "recall_ms_p50": {m: round(statistics.median(t), 2) for m, t in times.items()},
            }
        )
        if progress:
            progress(done + 1, len(conversations))
    return {
        "dataset": "locomo",
        "conversations": len(conversations),
        "questions": questions,
        "records": records,
        "model": embedder.model_id,
        "k": DEPTH,
        "modes": {
            m: {
                **tallies[m].as_json(),
                "recall_ms_p50": round(statistics.median(latencies[m]), 2) if latencies[m] else 0.0,
            }
            for m in chosen
        },
        "storage": _storage(stores),
        "stores": stores,
    }


def _storage(stores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Bytes per record over all stores, with and without the conversation's per-record data
    (session and event time), and the growth between the two in percent."""
    n = sum(s["records"] for s in stores)
    full = sum(s["bytes_per_record"] * s["records"] for s in stores) / max(n, 1)
    plain = sum(s["plain_bytes_per_record"] * s["records"] for s in stores) / max(n, 1)
    return {
        "bytes_per_record": round(full),
        "plain_bytes_per_record": round(plain),
        "growth_percent": round(100.0 * (full / plain - 1.0), 1) if plain else 0.0,
    }
