"""Holes in the policy, closed: each through the real CLI (`magray tools run`, `magray policy`).

Destructive commands are tried with ``--yes --dry-run``: a deny holds in a dry run too,
and a broken rule then only previews the command instead of running it.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from magray.tools.audit import AuditLog

RUNNER = CliRunner()


def run(args: Sequence[str]) -> Result:
    result = RUNNER.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def tool(workspace: Path, name: str, *args: str, yes: bool = False) -> Result:
    argv = ["tools", "run", name, "--root", str(workspace)]
    for arg in args:
        argv += ["--arg", arg]
    return run([*argv, "--yes"] if yes else argv)


def audit_rows(home: Path) -> list[Any]:
    return AuditLog(home / "data" / "audit.db").rows()


# --- built-in deny rules ---------------------------------------------------------------


def test_writes_moves_and_deletes_under_git_are_denied_under_yes(
    workspace: Path, magray_home: Path
) -> None:
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n", encoding="utf-8")
    (workspace / "hook.sh").write_text("#!/bin/sh\ntouch pwned\n", encoding="utf-8")
    (workspace / "sub" / ".git").mkdir(parents=True)
    assert run(["policy", "allow", "file_*"]).exit_code == 0
    calls = [
        ("file_write", "path=.git/hooks/post-commit", "content=touch pwned"),
        ("file_write", "path=sub/.git/config", "content=[core]"),
        ("file_write", "path=.GIT/config", "content=[core]"),
        ("file_edit", "path=.git/config", "search=[core]", "replace=[core]\nfsmonitor=x"),
        ("file_move", "src=hook.sh", "dst=.git/hooks/post-commit"),
        ("file_move", "src=.git", "dst=old-git"),
        ("file_move", "src=sub", "dst=elsewhere"),  # a folder holding a .git
        ("file_delete", "path=.git/config"),
    ]
    for name, *args in calls:
        result = tool(workspace, name, *args, yes=True)
        assert result.exit_code == 4, (name, args, result.output)
        assert "built-in rule git-metadata" in result.stderr
    argv = json.dumps(["sh", "-c", "echo 'touch pwned' > post-commit"])
    result = tool(workspace, "shell_exec", f"argv={argv}", "cwd=.git/hooks", yes=True)
    assert result.exit_code == 4 and "built-in rule git-metadata" in result.stderr
    assert not (workspace / ".git" / "hooks" / "post-commit").exists()
    assert (workspace / ".git" / "config").read_text(encoding="utf-8") == "[core]\n"
    assert (workspace / "sub" / ".git").is_dir()
    assert {(r.decision, r.outcome) for r in audit_rows(magray_home)} == {("deny", "denied")}
    # reads of .git stay allowed, and writes elsewhere are not touched by the rule
    assert tool(workspace, "file_read", "path=.git/config").exit_code == 0
    assert tool(workspace, "file_write", "path=notes.txt", "content=x", yes=True).exit_code == 0


def test_a_named_exception_in_policy_toml_removes_the_git_rule(
    workspace: Path, magray_home: Path
) -> None:
    (workspace / ".git").mkdir()
    args = ("path=.git/description", "content=mine")
    assert tool(workspace, "file_write", *args, yes=True).exit_code == 4
    assert run(["policy", "remove", "git-metadata"]).exit_code == 1  # not by the CLI
    assert run(["policy", "allow", "file_read"]).exit_code == 0
    policy = magray_home / "policy.toml"
    policy.write_text(
        'builtin_exceptions = ["git-metadata"]\n' + policy.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    assert tool(workspace, "file_write", *args, yes=True).exit_code == 0
    assert (workspace / ".git" / "description").read_text(encoding="utf-8") == "mine"
    # adding a rule keeps the exception
    assert run(["policy", "deny", "shell_exec"]).exit_code == 0
    assert "builtin_exceptions" in policy.read_text(encoding="utf-8")
    shown = json.loads(run(["policy", "show", "--json"]).stdout)
    enabled = {b["name"]: b["enabled"] for b in shown["builtin"]}
    assert enabled["git-metadata"] is False and enabled["fork-bomb"] is True
    policy.write_text('builtin_exceptions = ["no-such-rule"]\n', encoding="utf-8")
    result = tool(workspace, "file_read", "path=hello.txt")
    assert result.exit_code == 1 and "no built-in rule named no-such-rule" in result.stderr


DESTRUCTIVE = [
    ["rm", "-rf", "/"],
    ["rm", "-fr", "~"],
    ["rm", "-r", "--no-preserve-root", "/"],
    ["rm", "-v", "-R", "-f", "--", "/"],
    ["rm", "--recursive", "--force", "/*"],
    ["/bin/rm", "-rf", "$HOME"],
    ["rm", "-rf", "~/"],
    ["rm", "-rf", "."],
    ["rm", "-rf", "*"],
    ["rm", "-rf", ".."],
    ["sudo", "-n", "rm", "-rf", "/"],
    ["env", "A=1", "rm", "-rf", "/"],
    ["sh", "-c", "echo hi; rm -rf / --no-preserve-root"],
    ["bash", "-lc", "cd /tmp && rm -rf ~"],
    ["bash", "-c", ":(){ :|:& };:"],
    ["sh", "-c", "bomb() { bomb | bomb & }; bomb"],
    ["mkfs", "/dev/sda1"],
    ["mkfs.ext4", "-F", "/dev/sdb"],
    ["dd", "if=/dev/zero", "of=/dev/sda", "bs=1M"],
    ["chmod", "-R", "777", "/"],
    ["chown", "-R", "nobody:nogroup", "/"],
    ["chmod", "--recursive", "000", "~"],
    ["rm", "-rf", "//"],
    ["rm", "-rf", "/tmp/../"],
    ["timeout", "-s", "KILL", "5", "rm", "-rf", "/"],
    ["find", ".", "-exec", "rm", "-rf", "/", ";"],
    ["bash", "-c", "eval 'rm -rf /'"],
    ["bash", "-c", "function f { f | f & }; f"],
    ["sudo", "dd", "of=/dev/nvme0n1", "if=/dev/urandom"],
]


@pytest.mark.parametrize("argv", DESTRUCTIVE, ids=lambda a: " ".join(a))
def test_destructive_commands_are_denied_under_yes(
    argv: list[str], workspace: Path, magray_home: Path
) -> None:
    assert run(["policy", "allow", "shell_exec"]).exit_code == 0
    base = ["tools", "run", "shell_exec", "--root", str(workspace), "--yes", "--dry-run"]
    result = run([*base, "--arg", f"argv={json.dumps(argv)}"])
    assert result.exit_code == 4, result.output
    assert "built-in rule" in result.stderr
    assert [(r.decision, r.outcome) for r in audit_rows(magray_home)] == [("deny", "denied")]


def test_deleting_the_workspace_itself_is_denied_and_nothing_runs(workspace: Path) -> None:
    argv = json.dumps(["rm", "-rf", str(workspace)])
    result = tool(workspace, "shell_exec", f"argv={argv}", yes=True)
    assert result.exit_code == 4 and "rm-recursive-root" in result.stderr
    assert (workspace / "hello.txt").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["rm", "-rf", "build"],
        ["rm", "-rf", "./build/*"],
        ["rm", "/tmp/x"],
        ["dd", "if=a", "of=/dev/null"],
        ["chmod", "-R", "u+w", "."],
        ["echo", "rm -rf /"],
        ["git", "status"],
        ["git", "rm", "-r", "--cached", "."],
        ["sh", "-c", "rm -rf build && echo done"],
    ],
    ids=lambda a: " ".join(a),
)
def test_ordinary_commands_are_not_caught(argv: list[str], workspace: Path) -> None:
    base = ["tools", "run", "shell_exec", "--root", str(workspace), "--yes", "--dry-run"]
    assert run([*base, "--arg", f"argv={json.dumps(argv)}"]).exit_code == 0


def test_policy_show_lists_the_builtin_rules(magray_home: Path) -> None:
    text = run(["policy", "show"])
    assert text.exit_code == 0
    for name in ("git-metadata", "rm-recursive-root", "mkfs", "dd-device", "fork-bomb"):
        assert f"[built-in {name}]" in text.stdout
    shown = json.loads(run(["policy", "show", "--json"]).stdout)
    assert {b["name"] for b in shown["builtin"]} >= {"git-metadata", "chmod-recursive-root"}
    assert all(b["builtin"] and b["action"] == "deny" and b["enabled"] for b in shown["builtin"])


# --- deny path rules without holes -----------------------------------------------------


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


# --- bad paths become audited refusals --------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ['"a\\u0000b.txt"', "a/" * 2100 + "x", "n" * 300, "ok/" + "é" * 200],
    ids=["nul", "long-path", "long-name", "long-name-bytes"],
)
@pytest.mark.parametrize("name", ["file_read", "file_list", "file_grep", "file_glob"])
def test_unusable_paths_are_audited_refusals(
    name: str, path: str, workspace: Path, magray_home: Path
) -> None:
    extra = ["pattern=x"] if name in ("file_grep", "file_glob") else []
    result = tool(workspace, name, f"path={path}", *extra)
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("error: denied:") and "Traceback" not in result.output
    assert [(r.decision, r.outcome) for r in audit_rows(magray_home)] == [("deny", "denied")]


def test_a_symlink_loop_is_skipped_with_a_note(workspace: Path, magray_home: Path) -> None:
    (workspace / "loop").symlink_to(workspace / "loop")
    (workspace / "pkg" / "a").symlink_to(workspace / "pkg" / "b")
    (workspace / "pkg" / "b").symlink_to(workspace / "pkg" / "a")
    grep = tool(workspace, "file_grep", "pattern=return", "path=.")
    assert grep.exit_code == 0 and "pkg/mod.py:2:" in grep.stdout
    assert "[skipped loop: a symlink loop]" in grep.stdout
    for args in (("path=.",), ("path=.", "recursive=true"), ("path=pkg",)):
        listed = tool(workspace, "file_list", *args)
        assert listed.exit_code == 0 and "symlink loop" in listed.stdout
    globbed = tool(workspace, "file_glob", "pattern=**/*")
    assert globbed.exit_code == 0 and "pkg/mod.py" in globbed.stdout
    read = tool(workspace, "file_read", "path=loop")
    assert read.exit_code == 4 and "symlink loop" in read.stderr
    assert audit_rows(magray_home)[-1].decision == "deny"


# --- file tools are bounded ----------------------------------------------------------


def magray(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess; the generous timeout only stops a hang from hanging pytest."""
    return subprocess.run(
        [sys.executable, "-m", "magray", "tools", "run", "--root", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ},
    )


def test_a_fifo_is_refused_not_waited_on(workspace: Path, magray_home: Path) -> None:
    os.mkfifo(workspace / "pipe")
    read = magray(workspace, "file_read", "--arg", "path=pipe")
    assert read.returncode == 1 and "not a regular file" in read.stderr
    grep = magray(workspace, "file_grep", "--arg", "pattern=one", "--arg", "path=.")
    assert grep.returncode == 0 and "hello.txt:1:one" in grep.stdout
    edit = magray(
        workspace, "file_edit", "-a", "path=pipe", "-a", "search=a", "-a", "replace=b", "--yes"
    )
    assert edit.returncode == 1 and "not a regular file" in edit.stderr


def test_a_walk_stops_at_the_timeout(workspace: Path) -> None:
    from magray.errors import ToolError
    from magray.tools.base import ToolContext
    from magray.tools.files import Walk

    walk = Walk("file_grep", ToolContext(roots=(workspace,), timeout=5))
    walk.check_time()
    walk.deadline -= 10  # as if the walk had run past its time
    with pytest.raises(ToolError, match="took longer than 5s"):
        list(walk.files(workspace))


# --- secrets ---------------------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        target = getattr(self.server, "redirect_to", None)
        if target:
            self.send_response(302)
            self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"results": [{"title": "T", "url": "https://e.test/"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def two_servers() -> Iterator[tuple[Any, Any]]:
    servers = []
    for _ in range(2):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        srv.daemon_threads = True
        srv.seen = []  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    first, second = servers
    first.redirect_to = f"http://127.0.0.1:{second.server_address[1]}"  # type: ignore[attr-defined]
    yield first, second
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("other", ["127.0.0.1", "localhost"], ids=["other-port", "other-host"])
def test_web_search_keeps_its_key_from_a_redirect_target(
    other: str, two_servers: tuple[Any, Any], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_servers
    first.redirect_to = f"http://{other}:{second.server_address[1]}"
    monkeypatch.setenv("MAGRAY_TOOLS_ALLOW_PRIVATE_HOSTS", "localhost")
    monkeypatch.setenv(
        "MAGRAY_WEB_SEARCH_URL", f"http://127.0.0.1:{first.server_address[1]}/s?q={{query}}"
    )
    monkeypatch.setenv("MAGRAY_WEB_SEARCH_KEY_ENV", "SEARCH_TEST_KEY")
    monkeypatch.setenv("SEARCH_TEST_KEY", "k3y-value")
    result = tool(workspace, "web_search", "query=magray", yes=True)
    assert result.exit_code == 0, result.output
    assert "https://e.test/" in result.stdout
    assert first.seen[0]["Authorization"] == "Bearer k3y-value"
    assert len(second.seen) == 1 and "Authorization" not in second.seen[0]


def test_audit_rows_hold_no_secrets(workspace: Path, magray_home: Path) -> None:
    url = "ftp://alice:hunter2@files.example/x?access_token=SECRET1&api_key=SECRET2&page=3"
    assert tool(workspace, "web_fetch", f"url={url}", yes=True).exit_code == 2
    url = "https://bob:pa55@[::1]:9/?token=SECRET3&password=SECRET4"
    assert tool(workspace, "web_fetch", f"url={url}", yes=True).exit_code == 4
    shown = run(["tools", "audit", "--json"]).stdout
    stored = (magray_home / "data" / "audit.db").read_bytes()
    for secret in ("hunter2", "SECRET1", "SECRET2", "SECRET3", "SECRET4", "pa55"):
        assert secret not in shown and secret.encode() not in stored
    details = [r.detail for r in audit_rows(magray_home)]
    assert any("access_token=***" in d and "page=3" in d for d in details), details


def test_an_ssrf_refusal_is_audited_as_deny(workspace: Path, magray_home: Path) -> None:
    result = tool(workspace, "web_fetch", "url=http://127.0.0.1:9/", yes=True)
    assert result.exit_code == 4 and "server-side request forgery" in result.stderr
    assert [(r.decision, r.outcome) for r in audit_rows(magray_home)] == [("deny", "denied")]


def test_nul_bytes_in_a_command_or_url_are_refused_not_crashes(
    workspace: Path, magray_home: Path
) -> None:
    result = tool(workspace, "shell_exec", 'argv=["echo", "a\\u0000b"]', yes=True)
    assert result.exit_code == 4 and "NUL byte" in result.stderr
    result = tool(workspace, "web_fetch", 'url="http://example.com/a\\u0000b"', yes=True)
    assert result.exit_code == 2 and "control characters" in result.stderr
    assert [(r.decision, r.outcome) for r in audit_rows(magray_home)] == [
        ("deny", "denied"),
        ("allow", "error"),
    ]


def test_credentials_follow_only_the_same_origin() -> None:
    from magray.tools.web import hop_headers, same_origin

    first = "http://search.example/q"
    assert same_origin(first, "http://search.example:80/other")
    assert same_origin(first, "https://search.example/q")  # the upgrade to TLS
    assert not same_origin("https://search.example/q", "http://search.example/q")
    assert not same_origin(first, "http://search.example:8080/q")
    assert not same_origin(first, "http://evil.example/q")
    headers = {"Authorization": "Bearer k", "Cookie": "c=1", "Accept": "application/json"}
    assert hop_headers(first, "http://evil.example/", headers) == {"Accept": "application/json"}
    assert hop_headers(first, first, headers) == headers


def test_a_runaway_pattern_stops_at_the_timeout(workspace: Path) -> None:
    (workspace / "a.txt").write_text("a" * 64 + "!\n", encoding="utf-8")
    args = ["--timeout", "0.5", "--arg", "pattern=(a|aa)+$", "--arg", "path=a.txt"]
    result = run(["tools", "run", "file_grep", "--root", str(workspace), *args])
    assert result.exit_code == 1 and "took longer than 0.5s" in result.stderr


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
