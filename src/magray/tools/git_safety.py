"""How the git tools run git so that it cannot run other programs or read denied paths.

``GIT_ENV`` and ``no_programs`` turn off everything a repository's config can make git
run: the fsmonitor, hooks (``core.hooksPath=/dev/null``; ``--no-verify`` alone leaves
``post-commit`` on), pagers and editors, credential helpers, every transport (so no
``uploadpack``, ``ext::`` or ``core.sshCommand``), signing, automatic gc, submodule
recursion, and each filter driver the config defines. External diffs and textconv are
turned off per command (``--no-ext-diff --no-textconv``). System and global config are
not read; the committer identity is taken from the global config by value only.

``shell_git_env`` gives a ``git`` command run through ``shell_exec`` the same protection
through the environment (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``,
which outrank every config file): the fsmonitor, hooks, pagers, editors, credential
helpers, signing and bare-repository discovery off, and each filter, diff and merge driver
and remote upload/receive pack that the repository's own config (not the user's global
one) defines turned off. Transports stay usable (the network still needs ``network=true``)
but ``ext::`` is refused and a repository's ``core.sshCommand`` is replaced by ``ssh``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from pathlib import Path

from magray.tools.base import ToolContext
from magray.tools.paths import relative_to_roots
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


#: SAFE_CONFIG for commands: transports stay, but no ext:: and no repository ssh command
SHELL_CONFIG = (
    *(p for p in SAFE_CONFIG if p not in ("protocol.allow=never", "core.sshCommand=false")),
    "protocol.ext.allow=never",
)

#: the keys of a repository's config that name programs per driver or remote
_DRIVER_KEYS = r"^(filter|diff|merge|remote)\.|^core\.sshcommand$"

#: what each such key becomes: an empty command fails where it would have run one
_NEUTRAL = {
    "clean": "",
    "smudge": "",
    "process": "",
    "required": "false",
    "textconv": "",
    "command": "",
    "external": "",
    "driver": "false",
    "uploadpack": "git-upload-pack",
    "receivepack": "git-receive-pack",
    "sshcommand": "ssh",
}

#: git's options before the subcommand that take their value as the next argument
_GIT_VALUE_OPTIONS = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--attr-source"}
)


def _global_options(argv: Sequence[str]) -> list[str]:
    """The options of a ``git`` argv before its subcommand (``-C DIR``, ``--git-dir=D``)."""
    out: list[str] = []
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        out.append(argv[i])
        if argv[i] in _GIT_VALUE_OPTIONS and i + 1 < len(argv):
            out.append(argv[i + 1])
            i += 1
        i += 1
    return out


def config_env(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs as ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``."""
    env: dict[str, str] = {}
    count = 0
    for count, pair in enumerate(pairs, start=1):
        key, _, value = pair.partition("=")
        env[f"GIT_CONFIG_KEY_{count - 1}"] = key
        env[f"GIT_CONFIG_VALUE_{count - 1}"] = value
    env["GIT_CONFIG_COUNT"] = str(count)
    return env


def driver_overrides(listing: Iterable[str]) -> list[str]:
    """``KEY=VALUE`` turning off each program-naming key of ``git config --show-scope
    --get-regexp`` lines from the repository's own config (scope ``local`` or ``worktree``)."""
    out: list[str] = []
    for line in listing:
        scope, _, rest = line.partition("\t")
        key = rest.split(" ", 1)[0].lower()
        if scope not in ("local", "worktree") or not key:
            continue
        last = key.rsplit(".", 1)[-1]
        if last in _NEUTRAL and (key.count(".") >= 2 or key in ("diff.external",)):
            out.append(f"{key}={_NEUTRAL[last]}")
        elif key == "core.sshcommand":
            out.append(f"{key}={_NEUTRAL['sshcommand']}")
    return list(dict.fromkeys(out))


def shell_git_env(argv: Sequence[str], cwd: Path, ctx: ToolContext) -> dict[str, str]:
    """The environment that keeps a ``git`` command of ``shell_exec`` from running what the
    repository's config names (see the module docstring); {} for other programs."""
    from magray.tools.shell import run_argv

    if not argv or Path(argv[0]).name != "git":
        return {}
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        "GIT_EDITOR": ":",
        "GIT_SEQUENCE_EDITOR": ":",
    }
    safe = config_env(SHELL_CONFIG)
    query = [argv[0], *_global_options(argv), "config", "--show-scope", "--get-regexp"]
    done = run_argv([*query, _DRIVER_KEYS], cwd, ctx, {**env, **safe}, discovery(ctx))
    listing = done.output.splitlines() if done.returncode == 0 else []
    return {**env, **config_env([*SHELL_CONFIG, *driver_overrides(listing)])}


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


def _secret_rels(ctx: ToolContext) -> list[str]:
    """MAGRAY's secret files (``ToolContext.secret_files``) that lie in a root, relative."""
    return [
        relative_to_roots(path, ctx.roots)
        for path in ctx.secret_files
        if any(path.is_relative_to(root) for root in ctx.roots)
    ]


def path_excludes(ctx: ToolContext, prefix: str) -> list[str]:
    """``:(exclude)`` pathspecs leaving out each denied glob and everything under it, and
    MAGRAY's secret files."""
    globs = ctx.path_filter.patterns() if ctx.path_filter is not None else ()
    globs = (*globs, *_secret_rels(ctx))
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
    secrets = _secret_rels(ctx)
    if ctx.path_filter is None and not secrets:
        return None
    for i, char in enumerate(rev):
        path = rev[i + 1 :]
        if char != ":" or not path:
            continue
        rel = posixpath.normpath(path.lstrip("/"))
        if prefix != ".":
            rel = posixpath.join(prefix, rel)
        if rel in secrets or (ctx.path_filter is not None and ctx.path_filter.hides(rel)):
            return path
    return None
