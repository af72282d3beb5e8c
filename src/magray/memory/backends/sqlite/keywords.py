"""Keyword search over the FTS5 index of the SQLite backend (BM25, porter + unicode61)."""

from __future__ import annotations

from collections.abc import Sequence

from magray.memory.backends.base import KeywordHit
from magray.memory.backends.sqlite.rows import EVENT_AT, filter_sql, stored_float
from magray.memory.backends.sqlite.store import Store
from magray.memory.records import Filters, Layer

_LAYERS = {layer.value: layer for layer in Layer}


def match_expression(terms: Sequence[str]) -> str | None:
    """An FTS5 MATCH expression: each term quoted, all OR-ed together."""
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def keyword_search(
    store: Store, terms: Sequence[str], filters: Filters, limit: int
) -> list[KeywordHit]:
    """The best ``limit`` matches of any of ``terms``, best first.

    Without filters, FTS5 ranks on its own and only the top ``limit`` rows are joined with
    their records; with filters, every match is joined so the filter can apply.
    """
    match = match_expression(terms)
    if match is None:
        return []
    if filters == Filters():
        sql = (
            f"SELECT f.rowid, f.score, r.layer, {EVENT_AT} FROM (SELECT rowid,"
            " -bm25(records_fts) AS score FROM records_fts WHERE records_fts MATCH ?"
            " ORDER BY score DESC LIMIT ?) f JOIN records r ON r.num = f.rowid"
            " ORDER BY f.score DESC"
        )
        params: list[object] = [match, limit]
    else:
        cond, fparams = filter_sql(filters)
        sql = (
            f"SELECT r.num, -bm25(records_fts) AS score, r.layer, {EVENT_AT} FROM records_fts"
            " JOIN records r ON r.num = records_fts.rowid"
            f" WHERE records_fts MATCH ? AND {cond} ORDER BY score DESC LIMIT ?"
        )
        params = [match, *fparams, limit]
    out: list[KeywordHit] = []
    for num, score, layer, at in store.conn.execute(sql, params):
        # Hundreds of rows a query: plain values go straight through; anything odd (a time
        # no MAGRAY writes) takes the careful conversion.
        plain = type(at) is float and at - at == 0.0
        out.append(KeywordHit(num, score, _LAYERS[layer], at if plain else stored_float(at)))
    return out


def keyword_ranking(
    store: Store, terms: Sequence[str], filters: Filters, limit: int
) -> list[tuple[int, float]]:
    """(label, score) of ``keyword_search``'s hits: without filters FTS5 answers alone and no
    record is read (the join that reads each match's layer and time is most of the cost)."""
    if filters != Filters():
        return [(hit.num, hit.score) for hit in keyword_search(store, terms, filters, limit)]
    match = match_expression(terms)
    if match is None:
        return []
    rows = store.conn.execute(
        "SELECT rowid, -bm25(records_fts) AS score FROM records_fts WHERE records_fts MATCH ?"
        " ORDER BY score DESC LIMIT ?",
        (match, limit),
    ).fetchall()
    return [(int(num), float(score)) for num, score in rows]


def rebuild(store: Store) -> None:
    """Rebuild the FTS5 index from the records."""
    with store.write() as conn:
        conn.execute("INSERT INTO records_fts (records_fts) VALUES ('rebuild')")
