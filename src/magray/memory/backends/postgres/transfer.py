"""Exact import, consistent snapshots and integrity checks of the PostgreSQL backend.

A snapshot is a consistent export, not a file copy: one ``REPEATABLE READ`` read-only
transaction sees one instant of the store while other processes keep writing, and writes
it as ``memory.jsonl`` (the lines ``magray memory export`` writes, vectors included) plus
``state.jsonl`` (access history, lifecycle log, archived histories, ingest bookkeeping and
metadata), so a restore brings back the whole store. For a whole database, use
PostgreSQL's own tools (``pg_dump``, base backups with point-in-time recovery).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.errors import BackupError
from magray.hashing import content_hash
from magray.memory.backends.base import Snapshot, StoreCheck, StoredRow
from magray.memory.backends.postgres import access, schema
from magray.memory.backends.postgres.core import (
    BUMP,
    COLUMNS,
    RECORDS,
    Core,
    to_row,
    vector_bytes,
    vector_param,
)
from magray.memory.records import Layer, Record

if TYPE_CHECKING:
    import psycopg

RECORDS_FILE = "memory.jsonl"
STATE_FILE = "state.jsonl"

_EXACT = (
    "INSERT INTO records (id, text, layer, kind, tags, project, session, source_uri,"
    " source_start, source_end, source_line_start, source_line_end, created_at, updated_at,"
    " layer_since, importance, pinned, promotion_score,"
    " content_hash, embedding_model, embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
    " RETURNING num"
)


def exact_params(r: Record, vector: bytes, model: str) -> tuple[Any, ...]:
    src = r.source
    return (
        r.id,
        r.text,
        str(r.layer),
        r.kind,
        list(r.tags),
        r.project or "",
        r.session,
        src.uri if src else None,
        src.start if src else None,
        src.end if src else None,
        src.line_start if src else None,
        src.line_end if src else None,
        r.created_at,
        r.updated_at,
        r.layer_since,
        r.importance,
        r.pinned,
        r.promotion_score,
        r.content_hash,
        model if vector else None,
        vector_param(vector) if vector else None,
    )


def insert_exact_rows(
    conn: psycopg.Connection[Any], rows: Iterable[tuple[Record, bytes]], model: str
) -> tuple[int, int, dict[str, int]]:
    """(imported, duplicates, label by id of the imported) — inside a write."""
    imported = duplicates = 0
    labels: dict[str, int] = {}
    for record, vector in rows:
        row = conn.execute(_EXACT, exact_params(record, vector, model)).fetchone()
        if row is None:
            duplicates += 1
        else:
            imported += 1
            labels[record.id] = int(row[0])
            if record.access_count or record.last_access_at is not None:
                conn.execute(BUMP, (int(row[0]), record.access_count, record.last_access_at))
    return imported, duplicates, labels


class TransferMixin(Core):
    def is_duplicate(self, record_id: str, layer: Layer, project: str, chash: str) -> bool:
        with self._read() as conn:
            row = conn.execute(
                "SELECT 1 FROM records WHERE id = %s OR (layer = %s AND project = %s"
                " AND content_hash = %s) LIMIT 1",
                (record_id, str(layer), project, chash),
            ).fetchone()
        return row is not None

    def insert_exact(
        self, rows: Iterable[tuple[Record, bytes]], *, model_id: str, dim: int
    ) -> tuple[int, int]:
        with self._write() as conn:
            if model_id and dim > 0:
                self._ensure_model(conn, model_id, dim)
            imported, duplicates, _ = insert_exact_rows(conn, rows, model_id)
        return imported, duplicates

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self, folder: Path) -> Snapshot:
        from magray.fileio import fsync_file
        from magray.memory.transfer.lines import record_line

        counts = dict.fromkeys((str(layer) for layer in Layer), 0)
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                with (
                    (folder / RECORDS_FILE).open("w", encoding="utf-8") as out,
                    conn.cursor(name="magray_snapshot") as cur,
                ):
                    cur.itersize = 1000
                    cur.execute(
                        f"SELECT {COLUMNS}, r.embedding::vector FROM {RECORDS} ORDER BY r.num"
                    )
                    for row in cur:
                        stored = to_row(row[:-1])
                        vec = vector_bytes(row[-1]) if row[-1] is not None else None
                        line = record_line(stored, vec)
                        out.write(json.dumps(line, ensure_ascii=False) + "\n")
                        counts[str(stored.record.layer)] += 1
                with (folder / STATE_FILE).open("w", encoding="utf-8") as out:
                    for line in self._state_lines(conn, meta):
                        out.write(json.dumps(line, ensure_ascii=False) + "\n")
                version = schema.current_version(conn, self.schema)
        except OSError as exc:
            raise BackupError(f"the snapshot of {self.location} failed ({exc}).") from None
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise BackupError(f"the snapshot of {self.location} failed ({exc}).") from None
            raise
        for name in (RECORDS_FILE, STATE_FILE):
            fsync_file(folder / name)
        model, dim = meta.get("embedding_model"), meta.get("embedding_dim")
        return Snapshot(
            files=(RECORDS_FILE, STATE_FILE),
            schema_version=version,
            embedding_model=model,
            embedding_dim=int(dim) if dim else None,
            counts=counts,
        )

    @staticmethod
    def _state_lines(
        conn: psycopg.Connection[Any], meta: dict[str, str]
    ) -> Iterable[dict[str, Any]]:
        for key, value in sorted(meta.items()):
            yield {"table": "meta", "key": key, "value": value}
        for rid, times in access.kept_times(conn, key="id").items():
            yield {"table": "access_log", "id": rid, "at": times}
        for row in conn.execute(
            "SELECT at, record_id, action, from_layer, to_layer, score, reasons"
            " FROM lifecycle_log ORDER BY seq"
        ):
            keys = ("at", "record_id", "action", "from_layer", "to_layer", "score", "reasons")
            yield {"table": "lifecycle_log", **dict(zip(keys, row, strict=True))}
        for row in conn.execute(
            "SELECT record_id, layer, created_at, layer_since, importance, pinned,"
            " access_times, archived_at FROM history_archive ORDER BY record_id"
        ):
            names = ("record_id", "layer", "created_at", "layer_since", "importance", "pinned")
            out = dict(zip(names, row[:6], strict=True))
            yield {
                "table": "history_archive",
                **out,
                "access_times": list(row[6]),
                "archived_at": row[7],
            }
        for row in conn.execute(
            "SELECT uri, project, layer, content_hash, chunks, ingested_at FROM ingested_sources"
            " ORDER BY uri, project, layer"
        ):
            cols = ("uri", "project", "layer", "content_hash", "chunks", "ingested_at")
            yield {"table": "ingested_sources", **dict(zip(cols, row, strict=True))}

    # -- integrity --------------------------------------------------------------------------
    def verify(self) -> StoreCheck:
        report = StoreCheck()
        with self._tx() as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            model, raw_dim = meta.get("embedding_model"), meta.get("embedding_dim")
            dim = int(raw_dim) if raw_dim else None
            (version,) = conn.execute("SELECT current_setting('server_version')").fetchone() or (
                "?",
            )
            report.checked["postgres"] = str(version)
            (ext,) = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone() or ("?",)
            report.checked["pgvector"] = str(ext)
            invalid = conn.execute(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND NOT (i.indisvalid AND i.indisready)",
                (self.schema,),
            ).fetchall()
            for (name,) in invalid:
                report.problems.append(
                    f"the index {self.schema}.{name} is invalid; run `magray memory reindex`."
                )
            stale_tsv = conn.execute(
                "SELECT COUNT(*) FROM records"
                f" WHERE tsv IS DISTINCT FROM to_tsvector('simple', fold(left(text,"
                f" {schema.TSV_CHARS})))"
            ).fetchone()
            report.checked["keyword_index"] = "ok" if not stale_tsv or not stale_tsv[0] else "stale"
            if stale_tsv and stale_tsv[0]:
                report.problems.append(
                    f"{stale_tsv[0]} keyword entries disagree with their text;"
                    " run `magray memory reindex`."
                )
            bad_hash = bad_vec = other_model = total = 0
            with conn.cursor(name="magray_verify") as cur:
                cur.itersize = 2000
                cur.execute(
                    "SELECT text, content_hash, embedding_model,"
                    " CASE WHEN embedding IS NULL THEN NULL ELSE vector_dims(embedding::vector)"
                    " END FROM records"
                )
                for text, chash, emb_model, dims in cur:
                    total += 1
                    if content_hash(text) != chash:
                        bad_hash += 1
                    if dims is not None and dim is not None and dims != dim:
                        bad_vec += 1
                    if dims is not None and emb_model != model:
                        other_model += 1
            kind, col_dim = schema.vector_type(conn)
        report.checked["records"] = total
        report.checked["vector_column"] = f"{kind}({col_dim})" if col_dim else kind
        if bad_hash:
            report.problems.append(
                f"{bad_hash} record(s) have a content hash that does not match their text."
            )
        if bad_vec or (dim is not None and col_dim is not None and col_dim != dim):
            report.problems.append(
                f"{bad_vec} vector(s) have the wrong dimension; run `magray memory reindex"
                " --reembed`."
            )
        if other_model:
            report.problems.append(
                f"{other_model} record(s) hold vectors of another model;"
                " run `magray memory reindex --reembed`."
            )
        if model is not None:
            for layer, health in self.index_health().items():  # type: ignore[attr-defined]
                report.checked[f"index_{layer}"] = {
                    "expected": health["expected"],
                    "found": health["indexed"],
                }
        report.checked["meta"] = json.dumps({"model": model, "dim": dim})
        return report


def restore_rows(conn: psycopg.Connection[Any], folder: Path, model: str | None) -> int:
    """Load a snapshot's files into the (empty) current schema; returns records loaded."""
    total = 0
    labels: dict[str, int] = {}
    batch: list[tuple[Record, bytes]] = []

    def flush() -> None:
        nonlocal total
        n, _, got = insert_exact_rows(conn, batch, model or "")
        total += n
        labels.update(got)
        batch.clear()

    with (folder / RECORDS_FILE).open(encoding="utf-8") as src:
        for raw in src:
            if not raw.strip():
                continue
            obj = json.loads(raw)
            batch.append(_record_of(obj))
            if len(batch) >= 500:
                flush()
    flush()
    with (folder / STATE_FILE).open(encoding="utf-8") as src:
        for raw in src:
            if not raw.strip():
                continue
            obj = json.loads(raw)
            _restore_state(conn, obj, labels)
    return total


def _time(value: Any) -> float:
    """A time of an export line: ISO 8601 (as export writes it) or unix seconds."""
    from magray.timefmt import parse_iso

    return parse_iso(value) if isinstance(value, str) else float(value)


def _record_of(obj: dict[str, Any]) -> tuple[Record, bytes]:
    import base64

    from magray.memory.records import Source

    src = obj.get("source")
    source = (
        None
        if not src
        else Source(
            src["uri"], src.get("start"), src.get("end"), src.get("line_start"), src.get("line_end")
        )
    )
    record = Record(
        id=obj["id"],
        text=obj["text"],
        layer=Layer(obj["layer"]),
        kind=obj["kind"],
        tags=tuple(obj.get("tags") or ()),
        project=obj.get("project"),
        session=obj.get("session"),
        source=source,
        created_at=_time(obj["created_at"]),
        updated_at=_time(obj["updated_at"]),
        layer_since=_time(obj["layer_since"]),
        last_access_at=None if obj.get("last_access_at") is None else _time(obj["last_access_at"]),
        access_count=int(obj.get("access_count") or 0),
        importance=float(obj["importance"]),
        pinned=bool(obj["pinned"]),
        promotion_score=obj.get("promotion_score"),
        content_hash=obj["content_hash"],
        embedding_model=obj.get("embedding_model"),
    )
    vector = base64.b64decode(obj["vector"]) if obj.get("vector") else b""
    return record, vector


def _restore_state(
    conn: psycopg.Connection[Any], obj: dict[str, Any], labels: dict[str, int]
) -> None:
    table = obj.pop("table")
    if table == "meta":
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
            " SET value = excluded.value",
            (obj["key"], obj["value"]),
        )
    elif table == "access_log" and obj["id"] in labels:
        conn.execute(access.ADD, (labels[obj["id"]], obj["at"]))
    elif table in {"lifecycle_log", "history_archive", "ingested_sources"}:
        cols = list(obj)
        marks = ", ".join(["%s"] * len(cols))
        conn.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks}) ON CONFLICT DO NOTHING",
            [obj[c] for c in cols],
        )


__all__ = ["RECORDS_FILE", "STATE_FILE", "StoredRow", "TransferMixin", "restore_rows"]
