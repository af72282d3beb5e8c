"""The tool protocol: a name, a description, pydantic arguments, a risk class, preview and run.

A tool's ``Args`` model gives the JSON Schema used for native function calling
(``Tool.schema()``); ``preview`` is the dry run (a unified diff for file changes,
the exact argv for commands); ``run`` does the work inside a ``ToolContext`` and
returns a ``ToolResult`` whose output is capped. Tools raise ``ToolError`` when
they cannot do what was asked and ``DeniedError`` when a target is out of bounds.
A tool that reaches a host its arguments did not name (a redirect) asks
``ToolContext.check_redirect`` first, which ``invoke`` fills from the policy.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from magray.config import option
from magray.errors import ConfigError, UsageError
from magray.tools.risk import Risk as Risk  # re-exported: tools import it from here
from magray.tools.sandbox import SandboxConfig

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.memory.service import Memory

#: seconds one tool call may take: the default of the ``tools.timeout`` setting
DEFAULT_TIMEOUT: float = option("tools.timeout").default
DEFAULT_OUTPUT_CAP = 64_000
#: the files SQLite keeps beside a database while it is open
_JOURNALS = ("-wal", "-shm", "-journal")


class ToolArgs(BaseModel):
    """Base of every tool's arguments: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


A = TypeVar("A", bound=ToolArgs)

#: decides a redirect to a URL on a host the call's arguments did not name; raises DeniedError
RedirectCheck = Callable[[str], None]


class PathFilter(Protocol):
    """The policy's word on paths a tool meets while walking folders (set by ``invoke``)."""

    def hides(self, rel: str) -> bool:
        """True when the tool must skip ``rel`` (a path relative to its root)."""
        ...

    def patterns(self) -> tuple[str, ...]:
        """The path globs denied to the tool; each covers a folder and all under it."""
        ...


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool returns: ``output`` for people (capped), ``data`` for programs (JSON-able)."""

    ok: bool
    output: str = ""
    data: Any = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "output": self.output, "data": self.data, "error": self.error}


@dataclass(frozen=True, slots=True)
class Secrets:
    """MAGRAY's secret files (real paths) and their ``(device, inode)`` pairs."""

    files: tuple[Path, ...] = ()
    ids: frozenset[tuple[int, int]] = frozenset()

    def holds(self, path: Path) -> bool:
        """Whether ``path`` (a real path) is one of the files, or a hard link to one."""
        if path in self.files:
            return True
        if not self.ids:
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self.ids


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Where and how tools run: allowed roots (the first is the workspace), limits, environment."""

    roots: tuple[Path, ...] = field(default_factory=lambda: (Path.cwd(),))
    timeout: float = DEFAULT_TIMEOUT
    output_cap: int = DEFAULT_OUTPUT_CAP
    env: Mapping[str, str] | None = None
    #: host globs that web tools may reach even when they resolve to private addresses
    allow_private_hosts: tuple[str, ...] = ()
    #: the policy's word on a redirect to another host (set by ``invoke``; None: no policy)
    check_redirect: RedirectCheck | None = None
    #: the OS sandbox of commands and git (``tools.sandbox``)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    #: the paths this tool must skip when it walks folders (set by ``invoke``; None: none)
    path_filter: PathFilter | None = None
    #: the settings of the runtime that made this context (``Runtime.tool_context``)
    settings: Settings | None = None
    #: opens the runtime's memory (its embedder, its warnings) for the memory tools
    open_memory: Callable[[], Memory] | None = None

    def __post_init__(self) -> None:
        if not self.roots:
            raise UsageError("at least one workspace root is needed.")
        object.__setattr__(self, "roots", tuple(Path(r).resolve() for r in self.roots))

    @property
    def workspace(self) -> Path:
        """The first root: relative paths are taken from here."""
        return self.roots[0]

    @property
    def own_folders(self) -> tuple[Path, ...]:
        """MAGRAY's own home folders (settings, policy, MCP servers, data, audit log, logs,
        models) that tools never change and commands see read-only; () without settings.

        A folder that holds a workspace root is left out: the user put the workspace there.
        """
        if self.settings is None:
            return ()
        paths = self.settings.paths
        folders = (paths.config_dir, paths.data_dir, paths.logs_dir, paths.models_dir)
        out: list[Path] = []
        for folder in folders:
            real = folder.expanduser().resolve()
            if real not in out and not any(r.is_relative_to(real) for r in self.roots):
                out.append(real)
        return tuple(out)

    @property
    def secret_files(self) -> tuple[Path, ...]:
        """MAGRAY's own secrets (the LLM provider keys file, the server's API-key database
        and its journal files), real paths: no tool reads them and commands do not see
        them, wherever they lie; () without settings."""
        if self.settings is None:
            return ()
        paths = self.settings.paths
        db = paths.server_keys_db
        files = [paths.keys_file, db, *(db.with_name(db.name + s) for s in _JOURNALS)]
        return tuple(dict.fromkeys(f.expanduser().resolve() for f in files))

    def secrets(self) -> Secrets:
        """``secret_files`` with their identities, to ask about many paths."""
        files = self.secret_files
        ids = set()
        for secret in files:
            with contextlib.suppress(OSError):
                st = os.stat(secret)
                ids.add((st.st_dev, st.st_ino))
        return Secrets(files, frozenset(ids))

    def is_secret(self, path: Path) -> bool:
        """Whether ``path`` (a real path) is one of ``secret_files``, or a hard link to one."""
        return self.settings is not None and self.secrets().holds(path)

    def base_env(self) -> Mapping[str, str]:
        return os.environ if self.env is None else self.env

    def require_settings(self, tool: str) -> Settings:
        """The runtime's settings; tools that need them never load the global ones."""
        if self.settings is None:
            raise ConfigError(
                f"{tool} needs MAGRAY's settings; run it in a context made by "
                "Runtime.tool_context (magray.runtime)."
            )
        return self.settings


def cap_output(text: str, cap: int) -> str:
    """``text`` cut to ``cap`` characters, with a note saying how much was left out."""
    if len(text) <= cap:
        return text
    dropped = len(text) - cap
    return text[:cap] + f"\n[… output truncated: {dropped} more characters not shown]"


def _said(err: Any) -> str:
    """pydantic's message for one bad field, with an example where its words are not enough."""
    if err.get("type") == "list_type":
        return 'Input should be a list, in JSON: ["a", "b"]'
    return str(err["msg"])


class Tool(ABC, Generic[A]):
    """One action the agent can take. Subclasses set the class attributes and ``run``."""

    name: ClassVar[str]
    description: ClassVar[str]
    risk: ClassVar[Risk]
    Args: type[A]
    #: argument fields holding paths (str or list of str) that must stay inside the roots
    path_fields: ClassVar[tuple[str, ...]] = ()
    #: path fields naming folders the call moves whole: the policy checks every path under them
    subtree_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """The JSON Schema of the arguments, for native function calling."""
        schema = cls.Args.model_json_schema()
        schema.pop("title", None)
        return schema

    def parse(self, raw: Mapping[str, Any]) -> A:
        """Validate raw arguments; a UsageError names every bad field."""
        try:
            args = self.Args.model_validate(dict(raw))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {_said(err)}"
                for err in exc.errors()
            )
            raise UsageError(
                f"{self.name}: invalid arguments ({problems}); {self._takes()}."
            ) from None
        # a required path left empty would mean the workspace root itself
        fields = self.Args.model_fields
        empty = [
            name
            for name in self.path_fields
            if name in fields
            and fields[name].is_required()
            and isinstance(getattr(args, name), str)
            and not getattr(args, name).strip()
        ]
        if empty:
            problems = "; ".join(f"{name}: the path is empty" for name in empty)
            raise UsageError(f"{self.name}: invalid arguments ({problems}); {self._takes()}.")
        return args

    def _takes(self) -> str:
        """``it takes path (required), start_line`` for error messages."""
        takes = ", ".join(
            f"{name} (required)" if field.is_required() else name
            for name, field in self.Args.model_fields.items()
        )
        return f"it takes {takes}" if takes else "it takes no arguments"

    def risk_for(self, args: A) -> Risk:
        """The risk of this call (a tool may be read-only for some arguments)."""
        return self.risk

    def path_args(self, args: A) -> list[str]:
        """The path arguments of this call, for the roots check and path rules."""
        paths: list[str] = []
        for name in self.path_fields:
            value = getattr(args, name)
            if isinstance(value, str):
                paths.append(value)
            elif isinstance(value, list | tuple):
                paths.extend(str(v) for v in value)
        return paths

    def approval_reason(self, args: A, ctx: ToolContext) -> str | None:
        """Why this call must be asked even when a rule allows it (None: no such reason)."""
        return None

    def command(self, args: A) -> list[str] | None:
        """The argv this call runs, if it runs a command (for command-prefix rules)."""
        return None

    def hosts(self, args: A) -> list[str]:
        """The network hosts this call reaches, if any (for host rules)."""
        return []

    def preview(self, args: A, ctx: ToolContext) -> str:
        """A dry run: what would happen, changing nothing."""
        shown = ", ".join(f"{k}={v!r}" for k, v in args.model_dump().items())
        return f"{self.name}({shown})"

    @abstractmethod
    def run(self, args: A, ctx: ToolContext) -> ToolResult:
        """Do the work."""
