"""How the git tools run git so that it cannot run other programs or read denied paths.

``GIT_ENV`` and ``no_programs`` turn off everything a repository's config can make git
run: the fsmonitor, hooks (``core.hooksPath=/dev/null``; ``--no-verify`` alone leaves
``post-commit`` on), pagers and editors, credential helpers, every transport (so no
``uploadpack``, ``ext::`` or ``core.sshCommand``), signing, automatic gc, submodule
recursion, and each filter driver the config defines. External diffs and textconv are
turned off per command (``--no-ext-diff --no-textconv``). System and global config are
not read; the committer identity is taken from the global config by value only.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from pathlib import Path

from magray.tools.base import ToolContext
from magray.tools.sandbox import Confinement

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ALLOW_PROTOCOL": "none",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "GIT_EDITOR": ":",
    "GIT_SEQUENCE_EDITOR": ":",
    "LC_ALL": "C",
}

SAFE_CONFIG = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "core.editor=:",
    "sequence.editor=:",
    "core.askPass=",
    "core.sshCommand=false",
    "core.alternateRefsCommand=",
    "credential.helper=",
    "protocol.allow=never",
    "uploadpack.packObjectsHook=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "log.showSignature=false",
    "gpg.program=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "color.ui=never",
    # A folder a model wrote HEAD, objects/, refs/ and config into is not a repository.
    "safe.bareRepository=explicit",
)


def no_programs(filter_config: Iterable[str]) -> list[str]:
    """``--no-pager`` and ``-c`` options disabling every program, filters named in the config.

    ``filter_config`` holds the lines of ``git config --get-regexp '^filter\\.'``.
    """
    out = ["--no-pager"]
    for pair in SAFE_CONFIG:
        out += ["-c", pair]
    drivers = []
    for line in filter_config:
        key = line.split(" ", 1)[0]
        if key.count(".") >= 2:
            drivers.append(key[len("filter.") : key.rindex(".")])
    for driver in dict.fromkeys(drivers):
        for part in ("clean=", "smudge=", "process=", "required=false"):
            out += ["-c", f"filter.{driver}.{part}"]
    return out


def discovery(ctx: ToolContext) -> Confinement:
    """Read-only, with the host's ``/tmp`` visible: for finding the repository and config.

    Commands get a private ``/tmp``; the tools' own queries must see a repository (or a
    home folder) that lies there, as git outside the sandbox would.
    """
    tmp = (Path("/tmp"),) if Path("/tmp").is_dir() else ()
    return Confinement(readable=(*tmp, *ctx.roots))


def identity_env(local_config: str, ctx: ToolContext) -> dict[str, str]:
    """Author and committer from the user's global git config, where the repository has none.

    ``local_config`` holds the lines of ``git config --get-regexp '^user\\.(name|email)$'``
    run on the repository alone.
    """
    from magray.tools.shell import run_argv

    have = {line.split(" ", 1)[0] for line in local_config.splitlines()}
    if {"user.name", "user.email"} <= have:
        return {}
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    argv = ["git", "config", "--global", "--get-regexp", r"^user\.(name|email)$"]
    done = run_argv(argv, ctx.workspace, ctx, env, discovery(ctx))
    out: dict[str, str] = {}
    for line in done.output.splitlines() if done.returncode == 0 else []:
        key, _, value = line.partition(" ")
        if key in have or key not in ("user.name", "user.email"):
            continue
        who = "NAME" if key == "user.name" else "EMAIL"
        out[f"GIT_AUTHOR_{who}"] = out[f"GIT_COMMITTER_{who}"] = value
    return out


def _under_top(glob: str, prefix: str) -> str | None:
    """A root-relative ``glob`` made relative to the repository top (``prefix`` in the root)."""
    glob = glob.strip("/") or "**"
    if glob.endswith("/**"):
        glob = glob[:-3]
    if prefix == ".":
        return glob
    if glob.startswith(prefix + "/"):
        return glob[len(prefix) + 1 :]
    return glob if glob.startswith("**") else None


def path_excludes(ctx: ToolContext, prefix: str) -> list[str]:
    """``:(exclude)`` pathspecs leaving out each denied glob and everything under it."""
    globs = ctx.path_filter.patterns() if ctx.path_filter is not None else ()
    out: list[str] = []
    for glob in globs:
        spec = _under_top(glob, prefix)
        if spec is not None:
            out += [f":(top,exclude,glob){spec}", f":(top,exclude,glob){spec}/**"]
    return out


def refused_path(rev: str, ctx: ToolContext, prefix: str) -> str | None:
    """The path in a ``REV:PATH`` revision that the policy hides from the tool, if any.

    Every split at a ``:`` is tried, so a ``:`` inside the revision part (``HEAD^{/fix:}``)
    cannot hide a path.
    """
    if ctx.path_filter is None:
        return None
    for i, char in enumerate(rev):
        path = rev[i + 1 :]
        if char != ":" or not path:
            continue
        rel = posixpath.normpath(path.lstrip("/"))
        if prefix != ".":
            rel = posixpath.join(prefix, rel)
        if ctx.path_filter.hides(rel):
            return path
    return None
