"""The OS sandbox of ``shell_exec`` and the git tools: bubblewrap (``bwrap``) on Linux.

Modes (the ``tools.sandbox`` setting), after Codex CLI:

* ``read-only``: the whole file system is read-only, the workspace roots included;
* ``workspace-write`` (default): the roots are writable (their ``.git`` folders stay
  read-only for commands), the rest of the file system is read-only;
* ``full-access``: everything the user can write is writable and the network is on.

In every mode the process gets a fresh ``/proc`` in its own PID namespace (it cannot
read MAGRAY's environment through ``/proc/$PPID/environ``), its own IPC namespace, a new
session (no terminal injection), no network unless the call is allowed it (or the mode
is ``full-access``), and an environment built from an allow-list (``clean_env``). Outside
``full-access`` it also gets a private ``/tmp`` and ``/run`` (no daemon sockets) and no
capabilities (bwrap run by root would otherwise keep them, and could remount ``/``).

Outside ``full-access`` the user's credentials are hidden too, wherever they lie (a root
included): each folder of ``SECRET_DIRS`` under the home (``HOME`` of the command's
environment, and the account's home) is an empty tmpfs, each file of ``SECRET_FILES``
and each file the caller names (MAGRAY's provider keys and server key database) reads
as ``/dev/null``.

Every process started here is registered until it ends; ``kill_running()`` kills them
all with their process trees (``bwrap --unshare-pid --die-with-parent``: when bwrap
dies, the kernel kills everything in its PID namespace). The executor calls it on
Ctrl-C.

Where bwrap is missing or fails its probe, commands run unconfined (still with the
clean environment, in their own process group) and ``unavailable()`` says why, so that
every command asks for approval.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any


class SandboxMode(StrEnum):
    """How much of the file system (and network) a command may touch."""

    READ_ONLY = "read-only"
    WORKSPACE_WRITE = "workspace-write"
    FULL_ACCESS = "full-access"


MODES = tuple(m.value for m in SandboxMode)

#: the environment variables a command inherits; everything else is left out
ENV_ALLOW = ("PATH", "HOME", "LANG", "TERM", "TZ", "USER")
ENV_ALLOW_PREFIXES = ("LC_",)
_FALLBACK_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """The run's sandbox settings: the mode and the bubblewrap program."""

    mode: SandboxMode = SandboxMode.WORKSPACE_WRITE
    bwrap: str = "bwrap"


@dataclass(frozen=True, slots=True)
class Confinement:
    """What one process may touch.

    Args:
        writable: folders it may write (the roots, or a repository's git folders).
        readable: folders re-bound read-only after ``writable`` (a root's ``.git``).
        network: whether it may reach the network.
    """

    writable: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()
    network: bool = False


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` on the allow-list (``PATH``, ``HOME``, ``LANG``, ``LC_*``, …)."""
    out = {
        name: value
        for name, value in env.items()
        if name in ENV_ALLOW or name.startswith(ENV_ALLOW_PREFIXES)
    }
    out.setdefault("PATH", _FALLBACK_PATH)
    return out


#: folders under a home holding credentials: commands see them empty
SECRET_DIRS = (
    ".ssh",
    ".aws",
    ".gnupg",
    ".azure",
    ".kube",
    ".password-store",
    ".config/gcloud",
    ".config/gh",
)
#: files under a home holding credentials: commands read them as /dev/null
SECRET_FILES = (
    ".netrc",
    ".git-credentials",
    ".docker/config.json",
    ".pypirc",
    ".npmrc",
    ".pgpass",
    ".vault-token",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".config/git/credentials",
    ".config/hub",
)


def _homes(env: Mapping[str, str]) -> list[Path]:
    homes = [env.get("HOME", "")]
    with contextlib.suppress(KeyError, ImportError):
        import pwd

        homes.append(pwd.getpwuid(os.getuid()).pw_dir)
    return [Path(h) for h in dict.fromkeys(homes) if h and Path(h).is_absolute() and h != "/"]


def secret_paths(env: Mapping[str, str], files: Sequence[Path] = ()) -> tuple[Path, ...]:
    """The credential folders and files under the homes of ``env`` that exist, real paths,
    then those of ``files`` that exist: what ``hide_args`` hides from a command."""
    wanted = [home / name for home in _homes(env) for name in (*SECRET_DIRS, *SECRET_FILES)]
    out: list[Path] = []
    for path in [*wanted, *files]:
        try:
            real = path.resolve()
            exists = real.exists()
        except (OSError, RuntimeError):
            continue
        if exists and real not in out:
            out.append(real)
    return tuple(out)


def hide_args(hidden: Sequence[Path], bound: Sequence[Path]) -> list[str]:
    """bwrap options hiding each of ``hidden``: a folder becomes an empty tmpfs, a file
    ``/dev/null``. A path under /tmp or /run (private in the sandbox) is hidden only when it
    lies in one of the ``bound`` folders the command sees."""
    out: list[str] = []
    for path in hidden:
        private = path.is_relative_to("/tmp") or path.is_relative_to("/run")
        if private and not any(path.is_relative_to(b) for b in bound):
            continue
        if path.is_dir():
            out += ["--tmpfs", str(path)]
        else:
            out += ["--ro-bind", "/dev/null", str(path)]
    return out


_PROBE = ("--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run")
_PROBE_TAIL = ("--unshare-pid", "--unshare-ipc", "--unshare-net", "--cap-drop", "ALL", "true")


@functools.cache
def _probe(bwrap: str) -> str | None:
    path = shutil.which(bwrap)
    if path is None:
        return f"{bwrap!r} (bubblewrap) was not found; install it with scripts/system-deps.sh"
    try:
        done = subprocess.run(
            [path, *_PROBE, *_PROBE_TAIL],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            env=clean_env(os.environ),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start ({exc})"
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap fails here ({why[-1] if why else f'exit {done.returncode}'})"
    return None


def unavailable(config: SandboxConfig) -> str | None:
    """Why commands cannot be confined in ``config``'s mode (None: the sandbox works).

    ``full-access`` confines nothing, so it is never unavailable. The probe runs once
    per bwrap program and process.
    """
    if config.mode is SandboxMode.FULL_ACCESS:
        return None
    return _probe(config.bwrap)


def bwrap_argv(
    argv: Sequence[str],
    cwd: Path,
    config: SandboxConfig,
    confinement: Confinement,
    hidden: Sequence[Path] = (),
) -> list[str]:
    """``argv`` wrapped in a bubblewrap command line for ``config`` and ``confinement``.

    ``hidden``: credential folders and files (``secret_paths``) the command must not read,
    outside ``full-access``.
    """
    out = [shutil.which(config.bwrap) or config.bwrap]
    if config.mode is SandboxMode.FULL_ACCESS:
        out += ["--bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc"]
    else:
        out += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        host_tmp = _host_tmp_binds()
        out += host_tmp
        # /run holds the sockets of daemons (docker, dbus, a user's agents): out of reach
        out += ["--tmpfs", "/run", *_resolver_binds()]
        bind = "--bind" if config.mode is SandboxMode.WORKSPACE_WRITE else "--ro-bind"
        for path in confinement.writable:
            out += [bind, str(path), str(path)]
        for path in confinement.readable:
            out += ["--ro-bind", str(path), str(path)]
        # last, so that a secret inside a root (or a re-bound folder) is hidden too
        bound = [*confinement.writable, *confinement.readable, *map(Path, host_tmp[2::3])]
        out += hide_args(hidden, bound)
        # root keeps every capability in bwrap unless told otherwise (and could remount /)
        out += ["--cap-drop", "ALL"]
    out += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
    if not confinement.network and config.mode is not SandboxMode.FULL_ACCESS:
        out.append("--unshare-net")
    out += ["--chdir", str(cwd), "--", *argv]
    return out


def _host_tmp_binds() -> list[str]:
    """Read-only binds for what commands need from the host's /tmp, which the private /tmp
    hides: the Python running MAGRAY (a virtual environment may live there), the folders on
    PATH, and the current folder."""
    import os
    import sys

    wanted = [sys.prefix, sys.exec_prefix, os.getcwd()]
    wanted += [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    out: list[str] = []
    seen: set[Path] = set()
    for raw in wanted:
        try:
            path = Path(raw).resolve()
        except (OSError, RuntimeError):
            continue
        if path in seen or not path.is_relative_to("/tmp") or path == Path("/tmp"):
            continue
        if path.is_dir():
            seen.add(path)
            out += ["--ro-bind", str(path), str(path)]
    return out


def _resolver_binds() -> list[str]:
    """Re-bind the folder under /run that ``/etc/resolv.conf`` points to (systemd-resolved)."""
    target = Path("/etc/resolv.conf").resolve()
    if target.is_relative_to("/run") and target.parent.is_dir():
        return ["--ro-bind", str(target.parent), str(target.parent)]
    return []


_running: dict[int, subprocess.Popen[bytes]] = {}
_cancelled: set[int] = set()
_lock = threading.Lock()


def spawn(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    stdout: IO[Any],
    config: SandboxConfig,
    confinement: Confinement,
    secret_files: Sequence[Path] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` confined (when the sandbox works) and register it for ``kill_running``.

    The credentials under the home of ``env`` and ``secret_files`` are hidden from it
    (``secret_paths``). The caller waits for it and then calls ``finish``.

    Raises:
        FileNotFoundError, PermissionError: the program (or bwrap) cannot be started.
    """
    full = list(argv)
    if _probe(config.bwrap) is None:
        if "/" not in argv[0] and shutil.which(argv[0], path=env.get("PATH")) is None:
            raise FileNotFoundError(argv[0])
        hidden = secret_paths(env, secret_files)
        full = bwrap_argv(argv, cwd, config, confinement, hidden)
    proc = subprocess.Popen(
        full,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    with _lock:
        _running[proc.pid] = proc
    return proc


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc``'s process group (and with bwrap, its whole PID namespace) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


def finish(proc: subprocess.Popen[bytes]) -> bool:
    """Forget a process that has ended (or was killed); kills what is left of its group.

    Returns True when ``kill_running`` cancelled it.
    """
    with _lock:
        _running.pop(proc.pid, None)
        cancelled = proc.pid in _cancelled
        _cancelled.discard(proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return cancelled


def kill_running() -> int:
    """Kill every command still running (and its process tree); the number killed.

    Safe to call from a signal handler's thread or any other thread: the tool calls
    waiting on these processes return promptly with a killed result.
    """
    with _lock:
        procs = list(_running.values())
        _cancelled.update(_running)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return len(procs)
