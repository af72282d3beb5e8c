"""The audit chain: appends from the server, and verify catching edits, deletions, reorders."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from magray.cli.main import app as cli
from magray.observability.audit_chain import AuditChain, chain_file


@pytest.fixture
def chain(tmp_path: Path) -> AuditChain:
    c = AuditChain(tmp_path / "chain.db")
    for i in range(1, 6):
        c.append(tenant="t", actor="k1", action=f"POST /v1/x{i}", target=f"/v1/x{i}")
    return c


def test_intact_chain_verifies(chain: AuditChain) -> None:
    result = chain.verify()
    assert result.ok and result.checked == 5
    entries = chain.entries()
    assert entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))


def test_modified_entry_is_named(chain: AuditChain) -> None:
    with sqlite3.connect(chain.path) as conn:
        conn.execute("UPDATE chain SET outcome = 'denied' WHERE seq = 3")
    result = chain.verify()
    assert not result.ok and result.first_bad == 3 and "modified" in result.reason


def test_deleted_entry_is_named(chain: AuditChain) -> None:
    with sqlite3.connect(chain.path) as conn:
        conn.execute("DELETE FROM chain WHERE seq = 2")
    result = chain.verify()
    assert not result.ok and result.first_bad == 2 and "deleted" in result.reason


def test_deleted_last_entry_is_named(chain: AuditChain) -> None:
    with sqlite3.connect(chain.path) as conn:
        conn.execute("DELETE FROM chain WHERE seq = 5")
    result = chain.verify()
    assert not result.ok and result.first_bad == 5


def test_reordered_entries_are_named(chain: AuditChain) -> None:
    """Entries 2 and 4 swap places (everything but their position is moved)."""
    cols = "ts, tenant, actor, action, target, outcome, detail, prev_hash, hash"
    with sqlite3.connect(chain.path) as conn:
        two = conn.execute(f"SELECT {cols} FROM chain WHERE seq = 2").fetchone()
        four = conn.execute(f"SELECT {cols} FROM chain WHERE seq = 4").fetchone()
        sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
        conn.execute(f"UPDATE chain SET {sets} WHERE seq = 2", four)
        conn.execute(f"UPDATE chain SET {sets} WHERE seq = 4", two)
    result = chain.verify()
    assert not result.ok and result.first_bad == 2


def test_rehashed_edit_is_still_caught(chain: AuditChain) -> None:
    """An edit that recomputes its own hash breaks the link to the next entry."""
    from magray.observability.audit_chain import entry_hash

    e = chain.entries()[2]
    forged = entry_hash(
        e.seq, e.ts, e.tenant, "intruder", e.action, e.target, e.outcome, e.detail, e.prev_hash
    )
    with sqlite3.connect(chain.path) as conn:
        conn.execute("UPDATE chain SET actor = 'intruder', hash = ? WHERE seq = 3", (forged,))
    result = chain.verify()
    assert not result.ok and result.first_bad == 4


def test_server_audits_mutations_and_denials(
    client: TestClient, key: Any, magray_home: Path
) -> None:
    w, r = key("writer", "acme"), key("reader", "acme")
    rid = client.post("/v1/memories", json={"text": "audited"}, headers=w).json()["id"]
    client.post("/v1/memories/search", json={"query": "audited"}, headers=r)  # a read
    client.delete(f"/v1/memories/{rid}", headers=r)  # denied: reader
    client.get("/v1/memories")  # denied: no key
    client.delete(f"/v1/memories/{rid}", headers=w)
    entries = AuditChain(chain_file(magray_home / "data")).entries()
    summary = [(e.tenant, e.action, e.outcome) for e in entries]
    assert summary == [
        ("acme", "POST /v1/memories", "ok"),
        ("acme", "DELETE /v1/memories/{id}", "denied"),
        ("-", "GET /v1/memories", "denied"),
        ("acme", "DELETE /v1/memories/{id}", "ok"),
    ]
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0 and "4 entries" in ok.output
    listed = runner.invoke(cli, ["audit", "list", "--tenant", "acme", "--json"])
    assert listed.exit_code == 0 and listed.output.count('"seq"') == 3
    typo = runner.invoke(cli, ["audit", "list", "--tenant", "acem"])
    assert typo.exit_code == 3 and typo.stdout == ""
    assert "no tenant 'acem': it has no data and no key" in typo.stderr
    with sqlite3.connect(chain_file(magray_home / "data")) as conn:
        conn.execute("UPDATE chain SET outcome = 'ok' WHERE seq = 2")
    bad = runner.invoke(cli, ["audit", "verify"])
    assert bad.exit_code == 1 and "broken at entry 2" in bad.output


def test_tool_audit_joins_the_chain(magray_home: Path) -> None:
    from magray.runtime import Runtime

    with Runtime.load() as rt:
        rt.audit.record("shell", {"cmd": "ls"}, "allow", "ok", 12)
        rt.audit.record("write_file", {"path": "x"}, "deny", "denied")
        assert [r.tool for r in rt.audit.rows()] == ["shell", "write_file"]
    chain = AuditChain(chain_file(magray_home / "data"))
    entries = chain.entries()
    assert [(e.actor, e.action, e.outcome) for e in entries] == [
        ("agent", "tool shell", "allow/ok"),
        ("agent", "tool write_file", "deny/denied"),
    ]
    assert chain.verify().ok


def test_cli_tool_calls_join_the_chain(magray_home: Path, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi\n", encoding="utf-8")
    args = ["tools", "run", "file_read", "--arg", "path=hello.txt", "--root", str(tmp_path)]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    entries = AuditChain(chain_file(magray_home / "data")).entries()
    assert [(e.actor, e.action) for e in entries] == [("agent", "tool file_read")]
    assert entries[0].outcome.startswith("allow")
