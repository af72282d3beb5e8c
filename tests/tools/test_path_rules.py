"""Deny path rules without holes: a rule covers a folder and all under it, and binds the
walking tools (grep, glob, list) and moves, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools.clirun import run, tool


@pytest.fixture
def secrets(workspace: Path, magray_home: Path) -> Path:
    (workspace / "secrets" / "deep").mkdir(parents=True)
    (workspace / "secrets" / "key.txt").write_text("TOPSECRET\n", encoding="utf-8")
    (workspace / "secrets" / "deep" / "more.txt").write_text("TOPSECRET 2\n", encoding="utf-8")
    (workspace / "public.txt").write_text("nothing TOPSECRET-free here\n", encoding="utf-8")
    (workspace / "leak.txt").symlink_to(workspace / "secrets" / "key.txt")
    (workspace / "door").symlink_to(workspace / "secrets")
    assert run(["policy", "deny", "*", "--path", "secrets/**"]).exit_code == 0
    return workspace


def test_grep_skips_and_refuses_denied_paths(secrets: Path) -> None:
    found = tool(secrets, "file_grep", "pattern=TOPSECRET", "path=.")
    assert found.exit_code == 0
    assert "public.txt:1:" in found.stdout
    assert "secrets" not in found.stdout and "leak.txt" not in found.stdout
    assert "TOPSECRET\n" not in found.stdout and "TOPSECRET 2" not in found.stdout
    assert "left out by the permission policy" in found.stdout
    for path in ("secrets", "secrets/", "./secrets", "secrets/deep", "door", "leak.txt"):
        refused = tool(secrets, "file_grep", "pattern=TOP", f"path={path}")
        assert refused.exit_code == 4, path
        assert "TOPSECRET" not in refused.output


def test_glob_and_list_leave_denied_names_out(secrets: Path) -> None:
    for pattern in ("**/*", "*", "secrets/*", "**/*.txt", "door/*"):
        found = tool(secrets, "file_glob", f"pattern={pattern}")
        assert found.exit_code == 0
        assert "key.txt" not in found.stdout and "more.txt" not in found.stdout, pattern
    for recursive in ("false", "true"):
        listed = tool(secrets, "file_list", "path=.", f"recursive={recursive}")
        assert listed.exit_code == 0
        assert "secrets" not in listed.stdout and "key.txt" not in listed.stdout
        assert "public.txt" in listed.stdout
    assert tool(secrets, "file_list", "path=secrets").exit_code == 4
    assert tool(secrets, "file_read", "path=secrets/key.txt").exit_code == 4


def test_moving_a_denied_folder_or_one_holding_it_is_refused(secrets: Path) -> None:
    for src, dst in (
        ("secrets", "x"),
        ("secrets/deep", "x"),
        ("door", "x"),
        ("public.txt", "secrets/p"),
    ):
        result = tool(secrets, "file_move", f"src={src}", f"dst={dst}", yes=True)
        assert result.exit_code == 4, (src, dst)
    (secrets / "outer" / "secrets").mkdir(parents=True)
    (secrets / "outer" / "secrets" / "k").write_text("x", encoding="utf-8")
    assert run(["policy", "deny", "file_move", "--path", "**/secrets/**"]).exit_code == 0
    result = tool(secrets, "file_move", "src=outer", "dst=moved", yes=True)
    assert result.exit_code == 4
    assert (secrets / "secrets" / "key.txt").exists() and (secrets / "outer").is_dir()


def test_policy_api_for_walking_tools(workspace: Path) -> None:
    from magray.tools.policy import Action, Policy, make_rule, path_matches

    policy = Policy(rules=(make_rule("*", Action.DENY, path="secrets/**"),))
    assert policy.denied_paths("git_show") == ["secrets/**"]
    assert policy.is_path_denied("git_show", "secrets")
    assert policy.is_path_denied("git_show", "secrets/a/b.txt")
    assert not policy.is_path_denied("git_show", "secrets.txt")
    assert not policy.is_path_denied("git_show", ".")
    assert policy.path_filter("file_grep").patterns() == ("secrets/**",)
    assert path_matches("secrets", "secrets/x") and path_matches("**/*.pem", "a/b.pem")
    assert not path_matches("*.py", "src/a.py")


def test_an_allow_path_rule_covers_a_call_only_when_it_covers_every_path(
    workspace: Path,
) -> None:
    (workspace / "scratch" / "deep" / "scratch").mkdir(parents=True)
    (workspace / "scratch" / "x.txt").write_text("new", encoding="utf-8")
    (workspace / "code").mkdir()
    (workspace / "code" / "scratch").mkdir()
    assert run(["policy", "allow", "file_move", "--path", "**/scratch/**"]).exit_code == 0
    # the destination is outside the allowed folder: asked (and nobody can be asked)
    args = ("src=scratch/x.txt", "dst=hello.txt", "overwrite=true")
    assert tool(workspace, "file_move", *args).exit_code == 4
    assert (workspace / "hello.txt").read_text(encoding="utf-8") == "one\ntwo\nthree\n"
    # a folder holding an allowed path is not allowed by it
    assert tool(workspace, "file_move", "src=code", "dst=moved").exit_code == 4
    assert tool(workspace, "file_move", "src=scratch/x.txt", "dst=scratch/y.txt").exit_code == 0
