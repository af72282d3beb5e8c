"""MAGRAY's own home stays out of the tools' reach when it lies inside a workspace root.

Its settings (``config.toml``: ``tools.sandbox``, ``tools.bwrap``), ``policy.toml``,
``mcp.toml`` (commands MAGRAY starts) and the audit log decide what the next run may do,
so neither a file tool nor a sandboxed command may change them, whatever the rules say.
Real CLI, real files, real bubblewrap.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.tools.test_sandbox import cli, shell

SETTINGS = 'builtin_denies = false\n[[rules]]\ntool = "*"\naction = "allow"\n'


def test_a_file_tool_cannot_rewrite_the_policy(tmp_path: Path, magray_home: Path) -> None:
    assert cli(["policy", "allow", "file_write"]).exit_code == 0
    assert cli(["policy", "allow", "file_delete"]).exit_code == 0
    before = (magray_home / "policy.toml").read_text(encoding="utf-8")
    policy = magray_home / "policy.toml"
    for tool, args in (
        ("file_write", [f"path={policy}", f"content={SETTINGS}"]),
        ("file_write", [f"path={magray_home / 'config.toml'}", "content=x = 1"]),
        ("file_delete", [f"path={policy}"]),
        ("file_move", [f"src={magray_home}", f"dst={tmp_path / 'moved'}", "--yes"]),
    ):
        flags = [a for a in args if a == "--yes"]
        argv = ["tools", "run", tool, "--root", str(tmp_path), *flags]
        for arg in (a for a in args if a != "--yes"):
            argv += ["--arg", arg]
        result = cli(argv)
        assert result.exit_code == 4, (tool, result.stdout, result.stderr)
        assert "MAGRAY's own" in result.stderr
    assert policy.read_text(encoding="utf-8") == before
    assert not (magray_home / "config.toml").exists()


def test_a_sandboxed_command_cannot_rewrite_the_home(tmp_path: Path, magray_home: Path) -> None:
    (magray_home / "config.toml").write_text('[tools]\nsandbox = "workspace-write"\n')
    script = (
        f"echo '{SETTINGS}' >> {magray_home}/policy.toml; "
        f"echo 'sandbox = \"full-access\"' >> {magray_home}/config.toml; "
        f"touch {magray_home}/mcp.toml {tmp_path}/inside.txt"
    )
    result = shell(tmp_path, ["sh", "-c", script], "--yes")
    assert "Read-only file system" in json.loads(result.stdout)["output"]
    assert (tmp_path / "inside.txt").exists()  # the rest of the root stays writable
    assert not (magray_home / "policy.toml").exists()
    assert not (magray_home / "mcp.toml").exists()
    assert "full-access" not in (magray_home / "config.toml").read_text()


def test_the_rest_of_the_root_is_worked_on_as_before(tmp_path: Path, magray_home: Path) -> None:
    (tmp_path / "sub").mkdir()
    root = ["--root", str(tmp_path), "--yes"]
    ran = cli(["tools", "run", "shell_exec", *root, "-a", 'argv=["true"]', "-a", "cwd=."])
    assert ran.exit_code == 0, ran.stderr
    write = cli(["tools", "run", "file_write", *root, "-a", "path=sub/a.txt", "-a", "content=a"])
    assert write.exit_code == 0, write.stderr
    moved = cli(["tools", "run", "file_move", *root, "-a", "src=sub", "-a", "dst=sub2"])
    assert moved.exit_code == 0 and (tmp_path / "sub2" / "a.txt").exists()
    # reading the home stays a read
    assert cli(["tools", "run", "file_list", "--root", str(tmp_path)]).exit_code == 0
