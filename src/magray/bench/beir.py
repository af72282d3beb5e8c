"""Reading a retrieval dataset in BEIR format.

A dataset directory holds ``corpus.jsonl`` (``{"_id", "title", "text"}`` per line),
``queries.jsonl`` (``{"_id", "text"}``) and ``qrels/*.tsv`` (a header line, then
``query-id<TAB>corpus-id<TAB>score``). Every qrels file present is read and merged; a
(query, document) pair judged twice keeps its highest score.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.errors import NotFoundError, UsageError


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    text: str

    @property
    def indexed_text(self) -> str:
        """What is stored and searched: ``title + " " + text`` (BEIR's convention)."""
        return f"{self.title} {self.text}".strip()


@dataclass(frozen=True, slots=True)
class Dataset:
    """A corpus, its queries and graded relevance judgments (qrels)."""

    name: str
    path: Path
    corpus: Mapping[str, Document]
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]  # query id → {document id: relevance grade}

    @property
    def judged_queries(self) -> list[str]:
        """Ids of the queries that have at least one positive judgment, in file order."""
        return [
            q for q in self.queries if any(grade > 0 for grade in self.qrels.get(q, {}).values())
        ]


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``path``'s numbered lines; a file that is not UTF-8 or cannot be read is a UsageError."""
    try:
        with path.open(encoding="utf-8") as fh:
            yield from enumerate(fh, 1)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; give the BEIR file as it ships.") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror or exc}); check it.") from None


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{lineno}: not valid JSON ({exc.msg}).") from None
        if not isinstance(obj, dict):
            raise UsageError(f"{path}:{lineno}: expected a JSON object.")
        yield lineno, obj


def _field(obj: Mapping[str, Any], name: str, path: Path, lineno: int, *, required: bool) -> str:
    value = obj.get(name)
    if value is None and not required:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and name == "_id":
        return str(value)
    if not isinstance(value, str):
        raise UsageError(f'{path}:{lineno}: "{name}" must be a string (got {value!r}).')
    return value


def load_corpus(path: Path) -> dict[str, Document]:
    corpus: dict[str, Document] = {}
    for lineno, obj in _json_lines(path):
        doc_id = _field(obj, "_id", path, lineno, required=True)
        if doc_id in corpus:
            raise UsageError(f"{path}:{lineno}: document id {doc_id!r} appears twice.")
        corpus[doc_id] = Document(
            id=doc_id,
            title=_field(obj, "title", path, lineno, required=False),
            text=_field(obj, "text", path, lineno, required=False),
        )
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for lineno, obj in _json_lines(path):
        query_id = _field(obj, "_id", path, lineno, required=True)
        queries[query_id] = _field(obj, "text", path, lineno, required=True)
    return queries


def load_qrels(paths: list[Path]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for path in paths:
        for lineno, line in _text_lines(path):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 3:
                raise UsageError(f"{path}:{lineno}: expected 'query-id<TAB>corpus-id<TAB>score'.")
            query_id, doc_id, raw = (p.strip() for p in parts)
            try:
                grade = int(float(raw))
            except (ValueError, OverflowError):
                if lineno == 1:
                    continue  # the header line
                raise UsageError(
                    f"{path}:{lineno}: the score must be a number (got {raw!r})."
                ) from None
            judged = qrels.setdefault(query_id, {})
            judged[doc_id] = max(grade, judged.get(doc_id, grade))
    return qrels


def load_dataset(path: Path) -> Dataset:
    """Read a BEIR-format dataset directory; missing parts raise ``NotFoundError``."""
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"{path} is a file; give the BEIR dataset's folder (corpus.jsonl, queries.jsonl,"
            " qrels/)."
        )
    if not path.is_dir():
        raise NotFoundError(f"dataset directory {path} does not exist; check the path.")
    missing = [name for name in ("corpus.jsonl", "queries.jsonl") if not (path / name).is_file()]
    qrels_files = sorted((path / "qrels").glob("*.tsv")) if (path / "qrels").is_dir() else []
    if not qrels_files:
        missing.append("qrels/*.tsv")
    if missing:
        raise NotFoundError(f"{path} is not a BEIR dataset: missing {', '.join(missing)}.")
    corpus = load_corpus(path / "corpus.jsonl")
    if not corpus:
        raise UsageError(f"{path / 'corpus.jsonl'} holds no documents.")
    return Dataset(
        name=path.resolve().name,
        path=path,
        corpus=corpus,
        queries=load_queries(path / "queries.jsonl"),
        qrels=load_qrels(qrels_files),
    )
