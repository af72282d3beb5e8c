"""What the PostgreSQL backend adds to the contract suite: folding of every script,
filtered vector search that returns full results, the pgvector version gate, tenants as
schemas, and a writer killed mid-transaction leaving nothing half-written."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from magray.errors import StoreError
from magray.memory.backends.postgres import PostgresBackend
from magray.memory.backends.postgres.connection import require_pgvector, schema_name
from magray.memory.records import Filters, Layer, NewRecord

DIM = 16


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype("<f4")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def backend(postgres_dsn: str, postgres_schema: str) -> Iterator[PostgresBackend]:
    b = PostgresBackend.connect(postgres_dsn, schema_name=postgres_schema)
    yield b
    b.close()


def add(b: PostgresBackend, texts: list[str], vecs: np.ndarray, **kw: object) -> list[int]:
    items = [(NewRecord(text=t, **kw), v.tobytes()) for t, v in zip(texts, vecs, strict=True)]  # type: ignore[arg-type]
    return [r.num for r in b.insert(items, model_id="m", dim=DIM, now=time.time())]


def test_keyword_search_folds_case_and_diacritics_in_every_script(backend: PostgresBackend) -> None:
    rng = np.random.default_rng(1)
    texts = ["КОШКА спит на окне", "Ёлка стоит в лесу", "Un CAFÉ très noir", "ΩΜΈΓΑ και άλφα"]
    nums = add(backend, texts, unit(rng, 4))
    for term, want in [("кошка", 0), ("елка", 1), ("cafe", 2), ("ωμεγα", 3), ("tres", 2)]:
        hits = backend.keyword_search([term], Filters(), 10)
        assert [h.num for h in hits] == [nums[want]], term
    assert backend.keyword_search(["собака"], Filters(), 10) == []


def test_keyword_scores_prefer_rare_terms_and_more_matches(backend: PostgresBackend) -> None:
    rng = np.random.default_rng(2)
    texts = [f"common word number {i}" for i in range(20)] + ["common and rare together"]
    nums = add(backend, texts, unit(rng, len(texts)))
    hits = backend.keyword_search(["common", "rare"], Filters(), 5)
    assert hits[0].num == nums[-1]
    assert hits[0].score > hits[1].score


def test_filtered_vector_search_returns_full_results(backend: PostgresBackend) -> None:
    """One record in 20 carries the tag: the HNSW scan must go on until k of them pass."""
    rng = np.random.default_rng(3)
    n = 2000
    vecs = unit(rng, n)
    items = [
        (
            NewRecord(
                text=f"record {i}", layer=Layer.ASSETS, tags=("rare",) if i % 20 == 0 else ()
            ),
            vecs[i].tobytes(),
        )
        for i in range(n)
    ]
    nums = [r.num for r in backend.insert(items, model_id="m", dim=DIM, now=time.time())]
    tagged = {nums[i] for i in range(0, n, 20)}
    q = unit(rng, 1)[0]
    hits = backend.vector_search(Layer.ASSETS, q, 10, Filters(tags=("rare",)))
    assert len(hits) == 10
    assert {num for num, _ in hits} <= tagged
    sims = [s for _, s in hits]
    assert sims == sorted(sims, reverse=True)
    exact = sorted(tagged, key=lambda num: -float(vecs[nums.index(num)] @ q))[:10]
    assert len({num for num, _ in hits} & set(exact)) >= 9


def test_old_pgvector_is_refused_with_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"pgvector 0\.7\.4; MAGRAY needs 0\.8 or newer"):
        require_pgvector("0.7.4", "db")
    require_pgvector("0.8.0", "db")
    require_pgvector("1.0", "db")


def test_tenants_are_schemas(postgres_dsn: str) -> None:
    assert schema_name(None) == "magray"
    assert schema_name("acme") == "magray_acme"
    rng = np.random.default_rng(4)
    a = PostgresBackend.connect(postgres_dsn, schema_name=schema_name("t_one"))
    b = PostgresBackend.connect(postgres_dsn, schema_name=schema_name("t_two"))
    try:
        add(a, ["only in tenant one"], unit(rng, 1))
        assert a.count() == 1
        assert b.count() == 0
        assert b.keyword_search(["tenant"], Filters(), 5) == []
    finally:
        a.close()
        b.close()


def test_halfvec_store_keeps_vectors_to_float16(postgres_dsn: str, postgres_schema: str) -> None:
    b = PostgresBackend.connect(postgres_dsn, schema_name=postgres_schema, vector_kind="halfvec")
    try:
        rng = np.random.default_rng(5)
        vecs = unit(rng, 3)
        nums = add(b, ["a", "b", "c"], vecs)
        got = np.frombuffer(b.vectors([nums[1]])[nums[1]][1], dtype="<f4")
        assert np.array_equal(got, vecs[1].astype("<f2").astype("<f4"))
        assert b.vector_search(Layer.INTERACT, vecs[2], 1, Filters())[0][0] == nums[2]
        assert b.verify().checked["vector_column"] == f"halfvec({DIM})"
    finally:
        b.close()


def test_a_writer_killed_mid_batch_leaves_nothing_half_written(
    backend: PostgresBackend, postgres_dsn: str, postgres_schema: str
) -> None:
    """The batch blocks on a row lock after writing half its records; its server process
    is then terminated from another connection: none of the batch may remain."""
    import psycopg

    rng = np.random.default_rng(6)
    add(backend, ["the blocker"], unit(rng, 1))
    before = backend.count()
    texts = [f"batch record {i}" for i in range(50)] + ["the blocker"]
    items = [(NewRecord(text=t), v.tobytes()) for t, v in zip(texts, unit(rng, 51), strict=True)]
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            backend.insert(items, model_id="m", dim=DIM, now=time.time())
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with psycopg.connect(postgres_dsn) as holder:
        holder.execute(
            f"SELECT num FROM {postgres_schema}.records WHERE text = 'the blocker' FOR UPDATE"
        )
        writer = threading.Thread(target=write)
        writer.start()
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            pid = None
            for _ in range(6000):  # a guard against a hang, not a timing assertion
                row = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE %s",
                    ("%FOR UPDATE%",),
                ).fetchone()
                if row is not None:
                    pid = row[0]
                    break
                time.sleep(0.01)
            assert pid is not None, "the batch never reached the locked row"
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        writer.join()
        holder.rollback()
    assert isinstance(outcome[0], StoreError)
    assert backend.count() == before
    assert backend.keyword_search(["batch"], Filters(), 100) == []
    # The pool replaced the dead connection: the store works on.
    add(backend, ["after the crash"], unit(rng, 1))
    assert backend.count() == before + 1
    assert backend.verify().problems == []


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from magray.config import load_settings
    from magray.memory.backends import open_backend

    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg → ImportError
    settings = load_settings({"memory.backend": "postgres", "memory.dsn": "postgresql:///x"})
    with pytest.raises(StoreError, match=r"pip install 'magray\[postgres\]'"):
        open_backend(settings)


def test_postgres_without_a_dsn_is_a_config_error() -> None:
    from magray.config import load_settings
    from magray.errors import ConfigError
    from magray.memory.backends import open_backend

    with pytest.raises(ConfigError, match=r"memory\.dsn is empty"):
        open_backend(load_settings({"memory.backend": "postgres"}))


def test_an_unreachable_server_is_one_clear_error(tmp_path: object) -> None:
    with pytest.raises(StoreError, match="cannot reach PostgreSQL"):
        PostgresBackend.connect(f"postgresql://nobody@/magray?host={tmp_path}")


def test_every_server_tenant_gets_a_schema_of_its_own() -> None:
    from magray.config import load_settings
    from magray.server.tenants import tenant_settings

    assert schema_name("a-b") != schema_name("a_b")
    assert schema_name("a-b").startswith("magray__")
    assert len(schema_name("x" * 63)) <= 63
    pg = load_settings({"memory.backend": "postgres", "memory.dsn": "postgresql:///m"})
    assert tenant_settings(pg, "acme").get_str("memory.pg_schema") == "magray_acme"
    assert tenant_settings(pg, "a-b").get_str("memory.pg_schema") == schema_name("a-b")
    lite = load_settings()
    assert tenant_settings(lite, "acme").get_str("memory.pg_schema") == "magray"


def test_a_schema_1_store_keeps_its_access_statistics(
    postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from magray.memory.access import bounded
    from magray.memory.backends.postgres import schema

    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 1)
    old = PostgresBackend.connect(postgres_dsn, schema_name=postgres_schema)
    busy, once = add(old, ["busy", "once"], unit(np.random.default_rng(9), 2))
    times = [1_700_000_000.0 + i for i in range(150)]
    with old._write() as conn:  # what version 1 wrote: counters and a row per access
        conn.execute(
            "INSERT INTO record_stats (num, access_count, last_access_at) VALUES"
            " (%s, 150, %s), (%s, 1, %s)",
            (busy, times[-1], once, times[0]),
        )
        conn.execute(
            "INSERT INTO access_log (num, at) SELECT %s, unnest(%s::double precision[])",
            (busy, times[::-1]),
        )
        conn.execute("INSERT INTO access_log (num, at) VALUES (%s, %s)", (once, times[0]))
    old.close()
    monkeypatch.undo()
    new = PostgresBackend.connect(postgres_dsn, schema_name=postgres_schema)  # migrates
    try:
        assert new.access_times() == {busy: bounded(times), once: [times[0]]}
        with new._read() as conn:  # moved into the bounded history, the log emptied
            kept = conn.execute("SELECT cardinality(times) FROM access_history WHERE num = %s",
                                (busy,)).fetchone()  # fmt: skip
            assert kept == (64,)
            assert conn.execute("SELECT count(*) FROM access_log").fetchone() == (0,)
        stored = {r.num: r.record for r in new.iter_records()}
        assert (stored[busy].access_count, stored[busy].last_access_at) == (150, times[-1])
        assert (stored[once].access_count, stored[once].last_access_at) == (1, times[0])
        new.record_access([busy], times[-1] + 1)
        assert new.access_times()[busy][-1] == times[-1] + 1
    finally:
        new.close()
