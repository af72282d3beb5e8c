"""`magray bench memory --backend sqlite --backend postgres`: the same benchmark on each
backend, side by side in one JSON object keyed by backend.

The PostgreSQL store goes to a schema of its own (dropped afterwards) on the server of
``--dsn``, or on the bundled PostgreSQL started in a temporary folder when none is given.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from magray.bench.memory import QUERIES, run
from magray.errors import UsageError

BACKENDS = ("sqlite", "postgres")


@contextmanager
def postgres_target(dsn: str | None) -> Iterator[dict[str, Any]]:
    """Settings of a throw-away schema on ``dsn`` (or on a bundled server)."""
    from magray.memory.backends.postgres.connection import driver

    psycopg = driver()
    schema = "bench_" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="magray-bench-pg-") as tmp:
        server = None
        if not dsn:
            from magray.memory.backends.postgres.bundled import start

            Path(tmp).chmod(0o755)
            server = start(Path(tmp) / "pgdata", delete_on_stop=True)
            dsn = server.dsn
        try:
            yield {"memory.dsn": dsn, "memory.pg_schema": schema}
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            if server is not None:
                server.stop()


def run_backends(
    n: int, dim: int, backends: Sequence[str], *, queries: int = QUERIES, dsn: str | None = None
) -> dict[str, Any]:
    """One report for one backend; ``{backend: report}`` for several."""
    names = list(dict.fromkeys(b.strip().lower() for b in backends)) or ["sqlite"]
    for name in names:
        if name not in BACKENDS:
            raise UsageError(f"--backend must be sqlite or postgres (got {name!r}).")
    reports: dict[str, Any] = {}
    for name in names:
        if name == "postgres":
            with postgres_target(dsn) as extra:
                reports[name] = run(n, dim, queries=queries, backend=name, extra=extra)
        else:
            reports[name] = run(n, dim, queries=queries)
    return reports[names[0]] if len(names) == 1 else reports
