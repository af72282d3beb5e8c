"""Credentials stay out of sandboxed commands and read tools, wherever they lie.

Real CLI, real files, real bubblewrap: the secrets are planted in a fake home (``HOME``)
inside the workspace root, and MAGRAY's own keys file and server key database in its
home, also inside the root.
"""

from __future__ import annotations

import json
from pathlib import Path

from magray.tools import sandbox
from tests.tools.conftest import git
from tests.tools.test_sandbox import cli, shell

SECRET = "s3cr3t-value"


def plant(home: Path) -> list[Path]:
    """Every credential file of ``sandbox.SECRET_DIRS``/``SECRET_FILES`` under ``home``."""
    out = []
    for name in sandbox.SECRET_DIRS:
        out.append(home / name / "id_secret")
    out += [home / name for name in sandbox.SECRET_FILES]
    for path in out:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{SECRET} {path.name}\n", encoding="utf-8")
    return out


def magray_secrets(magray_home: Path) -> list[Path]:
    keys = magray_home / "keys.toml"
    keys.write_text(f'openai = "{SECRET}"\n', encoding="utf-8")
    db = magray_home / "data" / "server-keys.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_text(SECRET, encoding="utf-8")
    return [keys, db]


def test_a_command_reads_no_credentials(tmp_path: Path, magray_home: Path) -> None:
    home = tmp_path / "home"
    planted = plant(home) + magray_secrets(magray_home)
    (tmp_path / "plain.txt").write_text("plain text\n", encoding="utf-8")
    env = {"HOME": str(home)}
    for path in planted:
        result = shell(tmp_path, ["cat", str(path)], "--yes", env=env)
        output = json.loads(result.stdout)["output"]
        assert SECRET not in output, path
    # a script that walks the home finds nothing either
    walk = shell(tmp_path, ["grep", "-r", SECRET, str(tmp_path)], "--yes", env=env)
    assert SECRET not in json.loads(walk.stdout)["output"]
    # everything else works as before: reading and writing the root, python, git
    script = "cat plain.txt && echo new > new.txt && python3 -c 'print(6*7)' && git --version"
    ok = shell(tmp_path, ["sh", "-c", script], "--yes", env=env)
    assert ok.exit_code == 0, ok.stdout
    output = json.loads(ok.stdout)["output"]
    assert "plain text" in output and "42" in output and "git version" in output
    assert (tmp_path / "new.txt").read_text() == "new\n"
    # the files themselves are untouched
    assert all(SECRET in p.read_text() for p in planted)


def test_the_account_home_is_hidden_under_another_home(tmp_path: Path) -> None:
    hidden = sandbox.secret_paths({"HOME": str(tmp_path / "nowhere")})
    assert all(not p.is_relative_to(tmp_path) for p in hidden)
    home = tmp_path / "home"
    plant(home)
    hidden = sandbox.secret_paths({"HOME": str(home)})
    assert (home / ".ssh").resolve() in hidden and (home / ".netrc").resolve() in hidden


def test_read_tools_refuse_magrays_secrets(tmp_path: Path, magray_home: Path) -> None:
    keys, db = magray_secrets(magray_home)
    (magray_home / "notes.txt").write_text("other file\n", encoding="utf-8")
    assert cli(["policy", "allow", "file_read"]).exit_code == 0
    root = ["--root", str(tmp_path), "--yes"]
    for path in (keys, db, magray_home / "data" / ".." / "keys.toml"):
        result = cli(["tools", "run", "file_read", *root, "-a", f"path={path}"])
        assert result.exit_code == 4, (path, result.stdout, result.stderr)
        assert "MAGRAY's secrets" in result.stderr and SECRET not in result.stdout
    link = tmp_path / "link.toml"
    link.symlink_to(keys)
    result = cli(["tools", "run", "file_read", *root, "-a", f"path={link}"])
    assert result.exit_code == 4 and SECRET not in result.stdout
    grep = cli(["tools", "run", "file_grep", *root, "-a", f"pattern={SECRET}", "--json"])
    assert SECRET not in grep.stdout
    listing = cli(["tools", "run", "file_list", *root, "-a", f"path={magray_home}", "--json"])
    assert "keys.toml" not in listing.stdout and "notes.txt" in listing.stdout
    other = cli(["tools", "run", "file_read", *root, "-a", f"path={magray_home / 'notes.txt'}"])
    assert other.exit_code == 0 and "other file" in other.stdout


def test_git_tools_show_no_committed_secret(tmp_path: Path, magray_home: Path) -> None:
    magray_secrets(magray_home)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "magray-home/keys.toml")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i")
    root = ["--root", str(tmp_path), "--json"]
    show = cli(["tools", "run", "git_show", *root, "-a", "rev=HEAD:magray-home/keys.toml"])
    assert show.exit_code == 4 and SECRET not in show.stdout
    log = cli(["tools", "run", "git_show", *root, "-a", "rev=HEAD"])
    assert log.exit_code == 0 and SECRET not in log.stdout
