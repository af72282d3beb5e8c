"""Vector and keyword search of the PostgreSQL backend, and its index upkeep.

Vector search: one HNSW index per layer (partial indexes), cosine distance. With filters,
pgvector ≥ 0.8 scans the graph iteratively (``hnsw.iterative_scan = relaxed_order``, set
on every connection) until enough rows pass the WHERE, so a filtered search returns full
results; ``hnsw.ef_search`` is raised per query to at least ``k``. Keyword search: a GIN
index over a generated ``tsvector`` and ``ts_rank_cd`` weighted by each term's inverse
document frequency, a BM25-like score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from magray.memory.backends.base import KeywordHit, QueryVector
from magray.memory.backends.postgres.core import Core, filter_sql
from magray.memory.records import Filters, Layer

MAX_EF = 1000  # pgvector's upper bound of hnsw.ef_search
# Below this many records (the planner's estimate) the record count is exact.
EXACT_COUNT_BELOW = 10_000


class SearchMixin(Core):
    def _ef(self, k: int) -> int:
        base = self.ef_search if self.ef_search > 0 else 100
        return min(MAX_EF, max(base, k))

    def vector_search(
        self, layer: Layer, query: QueryVector, k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        if k < 1:
            return []
        cond, params = filter_sql(filters)
        cast = f"%s::{self.vector_kind}"
        layer_sql = str(Layer(layer))  # a literal, so the planner picks the layer's index
        sql = (
            f"SELECT r.num, r.embedding <=> {cast} AS distance FROM records r"
            f" WHERE r.layer = '{layer_sql}' AND r.embedding IS NOT NULL"
            " AND r.embedding_model = (SELECT value FROM meta WHERE key = 'embedding_model')"
            f" AND {cond} ORDER BY r.embedding <=> {cast} LIMIT %s"
        )
        q = query.astype("float32", copy=False)
        ef = self._ef(k)
        if ef <= self._ef(0):  # the connection's own setting: one round trip
            with self._read() as conn:
                rows = conn.execute(sql, [q, *params, q, k]).fetchall()
        else:
            with self._tx() as conn:
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
                rows = conn.execute(sql, [q, *params, q, k]).fetchall()
        out = [(int(num), 1.0 - float(distance)) for num, distance in rows]
        out.sort(key=lambda kv: -kv[1])  # relaxed order: the index may return them shuffled
        return out

    def keyword_ranking(
        self, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[tuple[int, float]]:
        return [(hit.num, hit.score) for hit in self.keyword_search(terms, filters, limit)]

    def keyword_search(
        self, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[KeywordHit]:
        """BM25-like: the sum over query words of ``ts_rank_cd`` weighted by the word's
        inverse document frequency, all in one statement. The records matching any word
        are read once: their count per word gives the document frequencies (over the whole
        store, before filters), and the filtered ones are ranked."""
        words = [t for t in dict.fromkeys(terms) if t.strip()]
        if not words or limit < 1:
            return []
        cond, params = filter_sql(filters)
        query = "plainto_tsquery('simple', fold(%s))"
        any_word = " || ".join([query] * len(words))
        counts = ", ".join(
            f"COUNT(*) FILTER (WHERE m.tsv @@ {query}) AS d{i}" for i in range(len(words))
        )
        score = " + ".join(
            f"CASE WHEN s.d{i} > 0 THEN ln(1 + (s.n - s.d{i} + 0.5) / (s.d{i} + 0.5)) ELSE 0"
            f" END * ts_rank_cd(m.tsv, {query}, 1)"
            for i in range(len(words))
        )
        sql = (
            "WITH m AS MATERIALIZED (SELECT r.num, r.layer, r.created_at, r.tsv,"
            f" ({cond}) AS ok FROM records r WHERE r.tsv @@ ({any_word})),"
            " s AS (SELECT GREATEST((SELECT CASE WHEN c.reltuples >= %s"
            " THEN c.reltuples::bigint ELSE (SELECT COUNT(*) FROM records) END"
            " FROM pg_class c WHERE c.oid = 'records'::regclass),"
            f" (SELECT COUNT(*) FROM m))::float8 AS n, {counts} FROM m)"
            f" SELECT m.num, {score} AS score, m.layer, m.created_at FROM m, s WHERE m.ok"
            " ORDER BY score DESC, m.num LIMIT %s"
        )
        args: list[Any] = [*params, *words, EXACT_COUNT_BELOW, *words, *words, limit]
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [KeywordHit(int(n), float(s), Layer(layer), float(at)) for n, s, layer, at in rows]

    # -- derived indexes --------------------------------------------------------------------
    def index_health(self) -> dict[Layer, dict[str, int | str]]:
        out: dict[Layer, dict[str, int | str]] = {}
        with self._read() as conn:
            counts = dict(
                conn.execute(
                    "SELECT layer, COUNT(*) FROM records WHERE embedding IS NOT NULL"
                    " AND embedding_model = (SELECT value FROM meta"
                    " WHERE key = 'embedding_model') GROUP BY layer"
                ).fetchall()
            )
        for layer in Layer:
            n = int(counts.get(str(layer), 0))
            out[layer] = {
                "indexed": n,
                "backlog": 0,
                "searchable": n,
                "expected": n,
                "file": f"{self.schema}.records_hnsw_{layer} (PostgreSQL HNSW index)",
            }
        return out

    def sync_indexes(self) -> None:
        """Nothing to do: PostgreSQL updates its indexes inside every transaction."""

    def rebuild_indexes(self) -> dict[Layer, int]:
        with self._write() as conn:
            conn.execute("REINDEX INDEX records_tsv")
            model = conn.execute("SELECT value FROM meta WHERE key = 'embedding_model'").fetchone()
            if model is None:
                return {}
            for layer in Layer:
                conn.execute(f"REINDEX INDEX records_hnsw_{layer}")
            counts = dict(
                conn.execute(
                    "SELECT layer, COUNT(*) FROM records WHERE embedding IS NOT NULL GROUP BY layer"
                ).fetchall()
            )
        return {layer: int(counts.get(str(layer), 0)) for layer in Layer}

    def stale_vectors(self, model_id: str, *, after: int, limit: int) -> list[tuple[int, str]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT num, text FROM records WHERE num > %s AND (embedding IS NULL"
                " OR embedding_model IS DISTINCT FROM %s) ORDER BY num LIMIT %s",
                (after, model_id, limit),
            ).fetchall()
        return [(int(n), str(t)) for n, t in rows]

    def count_stale_vectors(self, model_id: str) -> int:
        with self._read() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM records WHERE embedding IS NULL"
                " OR embedding_model IS DISTINCT FROM %s",
                (model_id,),
            ).fetchone()
        return int(row[0]) if row else 0

    def set_vectors(self, vectors: Sequence[tuple[int, bytes]], model_id: str) -> None:
        from magray.memory.backends.postgres.core import vector_param

        if not vectors:
            return
        dim = len(vectors[0][1]) // 4
        with self._write() as conn:
            from magray.memory.backends.postgres import schema

            schema.fix_vector_column(conn, self.vector_kind, dim)
            with conn.cursor() as cur:
                cur.executemany(
                    "UPDATE records SET embedding = %s, embedding_model = %s WHERE num = %s",
                    [(vector_param(blob), model_id, num) for num, blob in vectors],
                )
