"""`magray backup` / `magray restore`: the whole home comes back, verified first."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from magray.cli.main import app

RUNNER = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = RUNNER.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_backup_and_restore_the_whole_home(magray_home: Path, tmp_path: Path) -> None:
    assert run("memory", "add", "the staging db listens on 5433")[0] == 0
    assert run("tasks", "add", "write the runbook")[0] == 0
    assert run("config", "set", "search.mode", "keyword")[0] == 0
    assert run("policy", "deny", "shell_exec", "--command", "curl")[0] == 0
    (magray_home / "keys.toml").write_text('[openai]\nkey = "sk-test"\n')
    dest = tmp_path / "b1"
    code, out, err = run("backup", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["memory_records"] == 1
    assert {"data/tasks.db", "config/config.toml", "config/policy.toml"} <= set(report["parts"])
    assert "config/keys.toml" not in report["parts"]  # secrets stay out unless asked

    # A fresh home gets everything back.
    for path in magray_home.iterdir():
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()
    code, _, err = run("restore", str(dest))
    assert code == 0, err
    assert "5433" in run("memory", "search", "staging", "--json")[1]
    assert "write the runbook" in run("tasks", "list")[1]
    assert run("config", "get", "search.mode")[1].strip() == "keyword"
    assert "curl" in run("policy", "show")[1]

    # Restoring over data needs --force.
    code, _, err = run("restore", str(dest))
    assert code == 1 and "--force" in err
    assert run("restore", str(dest), "--force")[0] == 0


def _tenant_store(name: str, text: str, task: str) -> None:
    """A tenant of `magray serve` with one memory and one task, as the server writes them."""
    from magray.config import load_settings
    from magray.memory.records import NewRecord
    from magray.memory.service import Memory
    from magray.server.tenants import tenant_settings
    from magray.tasks import TaskGraph

    settings = tenant_settings(load_settings(), name)
    with Memory(settings) as memory:
        memory.remember(NewRecord(text=text))
    with TaskGraph(settings.paths.tasks_db) as graph:
        graph.add(task)


def test_the_home_backup_keeps_the_server_tenants(magray_home: Path, tmp_path: Path) -> None:
    # "the whole home": the tenants of `magray serve` live under <data>/tenants/ and come
    # back with everything else, never silently left out
    import shutil

    assert run("memory", "add", "the home's own note")[0] == 0
    _tenant_store("acme", "acme's staging db listens on 5433", "acme runbook")
    dest = tmp_path / "b-tenants"
    code, out, err = run("backup", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["tenants"] == {"acme": 1}
    assert "tenants/acme/data/tasks.db" in report["parts"]

    shutil.rmtree(magray_home / "data")
    code, out, err = run("restore", str(dest))
    assert code == 0, err
    assert run("health", "--tenant", "acme", "--json")[0] == 0
    from magray.config import load_settings
    from magray.memory.service import Memory
    from magray.server.tenants import tenant_settings
    from magray.tasks import TaskGraph

    settings = tenant_settings(load_settings(), "acme")
    with Memory(settings) as memory:
        assert [r.text for r in memory.list_records()] == ["acme's staging db listens on 5433"]
    with TaskGraph(settings.paths.tasks_db) as graph:
        assert [t.title for t in graph.tasks()] == ["acme runbook"]
    assert "home's own note" in run("memory", "list")[1]

    # a tenant that already has data is replaced only with --force
    code, _, err = run("restore", str(dest))
    assert code == 1 and "--force" in err
    assert run("restore", str(dest), "--force")[0] == 0


def test_damaged_backup_changes_nothing(magray_home: Path, tmp_path: Path) -> None:
    assert run("tasks", "add", "keep me")[0] == 0
    dest = tmp_path / "b2"
    assert run("backup", str(dest))[0] == 0
    with sqlite3.connect(dest / "data" / "tasks.db") as conn:
        conn.execute("UPDATE tasks SET title = 'tampered'")
    code, _, err = run("restore", str(dest), "--force")
    assert code == 1 and "damaged" in err
    assert "keep me" in run("tasks", "list")[1]
    code, _, err = run("restore", str(tmp_path / "nowhere"))
    assert code == 3


def test_backup_into_a_non_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code, _, err = run("backup", str(tmp_path / "full"))
    assert code == 1 and "not a new or empty folder" in err


def test_each_restore_names_the_other_for_the_other_kind_of_backup(tmp_path: Path) -> None:
    assert run("memory", "add", "the staging db listens on 5433")[0] == 0
    home, memory = tmp_path / "home-backup", tmp_path / "memory-backup"
    assert run("backup", str(home))[0] == 0
    assert run("memory", "backup", str(memory))[0] == 0
    code, out, err = run("restore", str(memory), "--force")
    assert (code, out) == (1, "")
    assert "is a memory backup (from `magray memory backup`)" in err
    assert f"`magray memory restore {memory}`" in err and err.count("\n") == 1
    code, out, err = run("memory", "restore", str(home), "--force")
    assert (code, out) == (1, "")
    assert (
        f"is a whole-home backup (from `magray backup`): restore it with `magray restore {home}`"
        in err
    )
    assert f"`magray memory restore {home / 'memory'}`" in err and err.count("\n") == 1
    assert run("memory", "restore", str(home / "memory"), "--force")[0] == 0
