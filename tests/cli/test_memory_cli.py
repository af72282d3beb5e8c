"""The `magray memory` and `magray ingest` JSON contracts, through the real default model.

One home is shared by the module's read-mostly tests (the model loads once per command, so
fewer records means a faster suite); tests that damage a store get their own home.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from tests.conftest import TEST_MODELS_DIR

RUNNER = CliRunner()


def run(args: Sequence[str], home: Path | None = None, input: str | bytes | None = None) -> Result:
    """Invoke ``magray ARGS`` (in ``home`` when given) and check nothing escaped as a traceback."""
    env = None
    if home is not None:  # module-scoped homes are set up before the autouse env fixture
        env = {"MAGRAY_HOME": str(home), "MAGRAY_MODELS_DIR": str(TEST_MODELS_DIR)}
    result = RUNNER.invoke(app, list(args), env=env, input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ok_json(args: Sequence[str], home: Path | None = None, input: str | None = None) -> dict:
    result = run([*args, "--json"], home, input)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with three records: an insight with every field set, two interact notes."""
    path = tmp_path_factory.mktemp("cli-memory") / "home"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def ids(home: Path) -> dict[str, str]:
    port = ok_json(
        [
            "memory",
            "add",
            "The staging database listens on port 5433",
            "--layer",
            "insights",
            "--tag",
            "infra",
            "--tag",
            "db",
            "--kind",
            "fact",
            "--project",
            "magray",
            "--session",
            "s1",
            "--importance",
            "0.9",
        ],
        home,
    )
    deploy = ok_json(
        ["memory", "add", "-", "--tag", "ops", "--layer", "interact"],
        home,
        "Deploys happen on Fridays",
    )
    lint = ok_json(
        [
            "memory",
            "add",
            "Lint the python code with ruff",
            "--project",
            "other",
            "--layer",
            "interact",
        ],
        home,
    )
    return {"port": port["id"], "deploy": deploy["id"], "lint": lint["id"]}


def test_add_json_contract(home: Path, ids: dict[str, str]) -> None:
    again = ok_json(
        [
            "memory",
            "add",
            "Lint the python code with ruff",
            "--project",
            "other",
            "--layer",
            "interact",
        ],
        home,
    )
    assert again == {"id": ids["lint"], "layer": "interact", "created": False}
    fresh = ok_json(["memory", "add", "A brand new note"], home)
    assert set(fresh) == {"id", "layer", "created"}
    # What a user adds by hand is kept: the default layer is Assets.
    assert fresh["layer"] == "assets" and fresh["created"] is True
    assert len(fresh["id"]) >= 4
    human = run(["memory", "forget", fresh["id"]], home)
    assert human.exit_code == 0 and human.stdout == f"{fresh['id']}  forgotten\n"


def test_add_from_stdin_keeps_the_text(home: Path, ids: dict[str, str]) -> None:
    record = ok_json(["memory", "get", ids["deploy"]], home)
    assert record["text"] == "Deploys happen on Fridays"
    assert record["tags"] == ["ops"]


HIT_FIELDS = {
    "id",
    "text",
    "layer",
    "score",
    "kind",
    "tags",
    "project",
    "created_at",
    "occurred_at",
    "access_count",
}


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_search_json_contract_in_every_mode(home: Path, ids: dict[str, str], mode: str) -> None:
    data = ok_json(["memory", "search", "database port", "--mode", mode, "-k", "2"], home)
    assert data["query"] == "database port"
    hits = data["hits"]
    assert 1 <= len(hits) <= 2
    top = hits[0]
    assert set(top) == HIT_FIELDS
    assert top["id"] == ids["port"]
    assert top["layer"] == "insights"
    assert top["kind"] == "fact"
    assert top["tags"] == ["infra", "db"]
    assert top["project"] == "magray"
    assert isinstance(top["score"], float) and top["score"] > 0
    assert top["created_at"].endswith("Z")
    assert isinstance(top["access_count"], int)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_search_explain_adds_component_ranks(home: Path, ids: dict[str, str]) -> None:
    data = ok_json(["memory", "search", "database port", "--explain", "-k", "1"], home)
    explain = data["hits"][0]["explain"]
    assert set(explain) == {
        "vector_rank",
        "vector_score",
        "keyword_rank",
        "keyword_score",
        "fused_score",
        "layer_weight",
        "recency_factor",
        "rerank_score",
        "context_score",
    }
    assert explain["vector_rank"] == 1 and explain["keyword_rank"] == 1
    human = run(["memory", "search", "database port", "--explain", "-k", "1"], home)
    assert human.exit_code == 0
    assert ids["port"] in human.stdout and "vector #1" in human.stdout and "bm25 #1" in human.stdout


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--layer", "insights"], {"port"}),
        (["--layer", "interact"], {"deploy", "lint"}),
        (["--tag", "infra"], {"port"}),
        (["--tag", "infra", "--tag", "ops"], set()),
        (["--kind", "fact"], {"port"}),
        (["--project", "other"], {"lint"}),
        (["--session", "s1"], {"port"}),
        (["--created-after", "2000-01-01", "--created-before", "2999-12-31T23:59"], None),
        (["--created-after", "2999-01-01"], set()),
        (["--created-before", "2000-01-01T00:00+02:00"], set()),
    ],
)
def test_search_filters(
    home: Path, ids: dict[str, str], flags: list[str], expected: set[str] | None
) -> None:
    data = ok_json(["memory", "search", "port deploys lint", "--mode", "keyword", *flags], home)
    found = {h["id"] for h in data["hits"]}
    wanted = set(ids.values()) if expected is None else {ids[name] for name in expected}
    if expected is None:
        assert found >= wanted
    else:
        assert found == wanted


def test_search_with_no_match_is_quiet_on_stdout(home: Path, ids: dict[str, str]) -> None:
    result = run(["memory", "search", "zebra", "--mode", "keyword"], home)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no memories matched" in result.stderr


def test_get_by_full_id_and_prefix(home: Path, ids: dict[str, str]) -> None:
    full = ok_json(["memory", "get", ids["port"]], home)
    prefix = ok_json(["memory", "get", ids["port"][:6].upper()], home)
    assert prefix["id"] == full["id"] == ids["port"]
    assert full["text"] == "The staging database listens on port 5433"
    assert full["session"] == "s1" and full["importance"] == 0.9 and full["pinned"] is False
    assert full["source"] is None and full["embedding_model"] == "all-minilm-l6-v2"
    human = run(["memory", "get", ids["port"]], home)
    assert human.exit_code == 0 and "The staging database listens on port 5433" in human.stdout


def test_list_json_newest_first(home: Path, ids: dict[str, str]) -> None:
    data = ok_json(["memory", "list"], home)
    listed = [r["id"] for r in data["records"]]
    assert set(ids.values()) <= set(listed)
    assert listed.index(ids["lint"]) < listed.index(ids["port"])
    only = ok_json(["memory", "list", "--layer", "insights", "--limit", "1"], home)
    assert [r["id"] for r in only["records"]] == [ids["port"]]


def test_stats_json_contract(home: Path, ids: dict[str, str]) -> None:
    data = ok_json(["memory", "stats"], home)
    assert set(data) >= {"path", "db_bytes", "layers", "model", "index"}
    assert set(data["layers"]) == {"interact", "insights", "assets"}
    for row in data["layers"].values():
        assert set(row) >= {"records", "text_bytes", "vector_bytes", "pinned"}
    assert data["layers"]["insights"]["records"] == 1
    assert data["layers"]["insights"]["vector_bytes"] == 384 * 2 + 1  # f16: a new store
    assert data["model"] == {"stored": "all-minilm-l6-v2", "dim": 384, "active": "all-minilm-l6-v2"}
    for health in data["index"].values():
        assert health["indexed"] == health["expected"] and health["backlog"] == 0


def test_verify_and_reindex_json(home: Path, ids: dict[str, str]) -> None:
    report = ok_json(["memory", "verify"], home)
    assert report["ok"] is True and report["problems"] == []
    assert report["checked"]["sqlite_integrity"] == "ok"
    reindexed = ok_json(["memory", "reindex"], home)
    assert reindexed["reembedded"] == 0
    assert set(reindexed["indexed"]) == {"interact", "insights", "assets"}
    human = run(["memory", "reindex"], home)
    assert human.exit_code == 0
    assert "{" not in human.stdout and "insights 1" in human.stdout


def test_promote_and_expire_dry_run_json(home: Path, ids: dict[str, str]) -> None:
    promote = ok_json(["memory", "promote", "--dry-run"], home)
    assert promote["dry_run"] is True
    assert set(promote) == {"dry_run", "model", "promoted", "kept"}
    assert "source" in promote["model"]
    decisions = promote["promoted"] + promote["kept"]
    assert {d["id"] for d in decisions} >= set(ids.values())
    for d in decisions:
        assert set(d) == {
            "id",
            "text",
            "from",
            "to",
            "score",
            "rule_score",
            "model_score",
            "reasons",
        }
        assert isinstance(d["reasons"], list)
    by_id = {d["id"]: d for d in decisions}
    assert by_id[ids["lint"]]["text"] == "Lint the python code with ruff"
    human = run(["memory", "promote", "--dry-run"], home)
    assert "Lint the python code with ruff" in human.stdout
    expire = ok_json(["memory", "expire", "--dry-run"], home)
    assert expire == {"dry_run": True, "expired": []}
    assert ok_json(["memory", "list"], home)["records"]  # nothing changed


def test_forget_json(magray_home: Path) -> None:
    added = ok_json(["memory", "add", "forget me soon"])
    assert ok_json(["memory", "forget", added["id"][:5]]) == {"id": added["id"], "forgotten": True}
    assert run(["memory", "get", added["id"]]).exit_code == 3


def test_ingest_is_incremental(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "build").mkdir()
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "README.md").write_text("# Notes\n\nMAGRAY keeps vectors in usearch.\n")
    (root / "src" / "app.py").write_text("def answer():\n    return 42\n")
    (root / "build" / "out.py").write_text("ignored = True\n")
    (root / "debug.log").write_text("ignored\n")

    def counts() -> tuple[dict[str, int], dict[str, int]]:
        data = ok_json(["ingest", str(root), "--project", "demo"])
        assert data["layer"] == "assets" and data["project"] == "demo"
        assert set(data) == {"layer", "project", "files", "chunks", "skipped", "truncated"}
        return data["files"], data["chunks"]

    files, chunks = counts()
    assert files == {"added": 2, "updated": 0, "unchanged": 0, "removed": 0}
    assert chunks["added"] >= 2 and chunks["removed"] == 0
    assert counts()[0] == {"added": 0, "updated": 0, "unchanged": 2, "removed": 0}
    (root / "src" / "app.py").write_text("def answer():\n    return 43\n")
    assert counts()[0] == {"added": 0, "updated": 1, "unchanged": 1, "removed": 0}
    (root / "README.md").unlink()
    files, chunks = counts()
    assert files == {"added": 0, "updated": 0, "unchanged": 1, "removed": 1}
    assert chunks["removed"] >= 1
    listed = ok_json(["memory", "list", "--project", "demo"])["records"]
    assert len(listed) == 1 and listed[0]["source"]["uri"].endswith("app.py")
    human = run(["ingest", str(root), "--project", "demo"])
    assert human.exit_code == 0
    assert human.stdout.startswith("files: 0 added, 0 updated, 1 unchanged, 0 removed")


# -- damaged stores ------------------------------------------------------------------------


def _two_records() -> str:
    ok_json(["memory", "add", "first note about sqlite", "--layer", "interact"])
    second = str(
        ok_json(["memory", "add", "second note about usearch", "--layer", "interact"])["id"]
    )
    assert run(["memory", "reindex"]).exit_code == 0  # the index files now hold both
    return second


def test_corrupt_index_file_is_rebuilt_with_a_warning(magray_home: Path) -> None:
    _two_records()
    index = next((magray_home / "data" / "index").glob("vectors.*.usearch"))
    with index.open("r+b") as fh:
        fh.seek(64)
        fh.write(b"garbage" * 8)
    repaired = run(["memory", "verify", "--json"])
    assert repaired.exit_code == 0, repaired.output
    assert json.loads(repaired.stdout)["ok"] is True
    assert "warning:" in repaired.stderr and "rebuilding" in repaired.stderr
    again = run(["memory", "verify"])
    assert again.exit_code == 0 and again.stdout == "ok\n" and again.stderr == ""


def test_row_deleted_behind_the_journal_is_repaired_on_open(magray_home: Path) -> None:
    victim = _two_records()
    db = sqlite3.connect(magray_home / "data" / "memory.db")
    with db:
        db.execute("DROP TRIGGER records_journal_delete")
        db.execute("DELETE FROM records WHERE id = ?", (victim,))
    db.close()
    repaired = run(["memory", "verify", "--json"])
    assert repaired.exit_code == 0, repaired.output
    assert "disagrees with the store" in repaired.stderr
    report = json.loads(repaired.stdout)
    assert report["checked"]["index_interact"] == {"expected": 1, "found": 1}
    again = run(["memory", "verify"])
    assert again.exit_code == 0 and again.stderr == ""


def test_add_says_where_it_went_and_for_how_long(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    kept = run(["memory", "add", "The VPN endpoint is vpn.example.org"], home)
    assert kept.exit_code == 0
    assert "in assets (kept until you forget it)" in kept.stdout
    short = run(["memory", "add", "scratch thought", "--layer", "interact"], home)
    assert "in interact (expires after 24 h unless" in short.stdout
    piped = run(["memory", "add", "--json"], home, "read from standard input without a dash")
    assert piped.exit_code == 0 and json.loads(piped.stdout)["layer"] == "assets"


def test_expire_dry_run_shows_text_and_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    added = ok_json(["memory", "add", "a passing thought", "--layer", "interact"], home)
    env = {"MAGRAY_MEMORY_TTL_INTERACT_HOURS": "0.0000001"}
    result = RUNNER.invoke(
        app,
        ["memory", "expire", "--dry-run"],
        env={"MAGRAY_HOME": str(home), "MAGRAY_MODELS_DIR": str(TEST_MODELS_DIR), **env},
    )
    assert result.exit_code == 0, result.output
    assert f"{added['id']}  would expire:" in result.stdout
    assert "a passing thought" in result.stdout
