"""``mcp.toml``: the MCP servers whose tools the agent may use.

```toml
[servers.demo]
command = ["python", "server.py"]   # stdio: the server is started as a child process
timeout = 30                        # seconds to connect and to answer one call

[servers.remote]
url = "http://127.0.0.1:8000/mcp"   # streamable HTTP
```

Each ``[servers.NAME]`` table is checked against ``SERVER_OPTIONS`` by the validator every
settings file goes through (:func:`magray.config.read_table`): unknown keys are refused with
the closest known ones and each message names the file and the key
(``…/mcp.toml: servers.demo.timeout must be > 0 (got 0).``). Keys outside ``[servers]``
are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.config.options import Option
from magray.config.values import read_table
from magray.errors import ConfigError, NotFoundError, UsageError, see
from magray.tools.risk import Risk

_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
_SEE = "see docs/mcp.md"

#: seconds a server may take to connect and to answer one call, unless mcp.toml says otherwise
DEFAULT_SERVER_TIMEOUT = 30.0

#: the keys of one ``[servers.NAME]`` table
SERVER_OPTIONS: tuple[Option, ...] = (
    Option("command", None, list, "The command line that starts a stdio server."),
    Option("url", None, str, "The URL of a streamable HTTP server."),
    Option(
        "timeout",
        DEFAULT_SERVER_TIMEOUT,
        float,
        "Seconds to connect and to answer one call.",
        above=0,
    ),
)


@dataclass(frozen=True, slots=True)
class McpServer:
    """One configured server: ``command`` (stdio) or ``url`` (streamable HTTP)."""

    name: str
    command: tuple[str, ...] = ()
    url: str | None = None
    timeout: float = DEFAULT_SERVER_TIMEOUT

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    @property
    def risk(self) -> Risk:
        return Risk.NETWORK if self.url else Risk.EXEC

    @property
    def target(self) -> str:
        """What the server is: its URL or its command line."""
        return self.url or " ".join(self.command)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url} if self.url else {"command": list(self.command)}
        out["timeout"] = self.timeout
        return out


def mcp_file(config_dir: Path) -> Path:
    return config_dir / "mcp.toml"


def check_name(name: str) -> str:
    """A server name usable inside tool names (letters, digits, ``-``, ``_``; no ``__``)."""
    if not _NAME.match(name) or "__" in name:
        raise UsageError(
            f"server name {name!r} must be 1-32 letters, digits, '-' or '_' (no '__')."
        )
    return name


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # a malformed port or IPv6 address
        return ""


def make_server(
    name: str,
    command: list[str] | tuple[str, ...] | None = None,
    url: str | None = None,
    timeout: float | None = None,
) -> McpServer:
    """A validated server definition: exactly one of ``command`` and ``url``."""
    check_name(name)
    if bool(command) == bool(url):
        given = "both were given" if command else "neither was given"
        raise UsageError(
            f"server {name!r} needs either a command (after --) or --url ({given}); give one."
        )
    if url is not None and not re.match(r"https?://", url):
        raise UsageError(f"--url {url!r} must start with http:// or https://.")
    if url is not None and not _host(url):
        raise UsageError(f"--url {url!r} names no host; give one, e.g. http://127.0.0.1:8000/mcp.")
    if command and not command[0].strip():
        raise UsageError(
            f"server {name!r}: the command to run is empty; give the program after --."
        )
    if timeout is not None and not timeout > 0:
        raise UsageError(f"server {name!r}: timeout must be a positive number of seconds.")
    return McpServer(
        name=name,
        command=tuple(command or ()),
        url=url,
        timeout=DEFAULT_SERVER_TIMEOUT if timeout is None else float(timeout),
    )


def _parse_server(name: str, raw: Any, where: Path) -> McpServer:
    prefix = f"servers.{name}"
    values = read_table(raw, SERVER_OPTIONS, where=str(where), prefix=prefix, see=_SEE)
    command, url = values["command"], values["url"]
    try:
        check_name(name)
    except UsageError as exc:
        raise ConfigError(f"{where}: ", *exc.parts) from None
    if bool(command) == bool(url):
        raise ConfigError(
            f"{where}: {prefix} needs either command (a stdio server) or url (an HTTP server)"
            f" ({'both are set' if command else 'neither is set'}); keep one."
        )
    if url is not None and not re.match(r"https?://", url):
        raise ConfigError(
            f"{where}: {prefix}.url must start with http:// or https:// (got {url!r})."
        )
    return McpServer(name=name, command=command or (), url=url, timeout=values["timeout"])


def load_servers(path: Path) -> dict[str, McpServer]:
    """The servers in ``mcp.toml`` by name (none when the file does not exist)."""
    from magray.fileio import read_toml

    servers = read_toml(path, "fix or delete it").get("servers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{path}: servers must be a table of [servers.NAME] tables; {_SEE}.")
    return {name: _parse_server(name, raw, path) for name, raw in sorted(servers.items())}


def save_servers(path: Path, servers: Mapping[str, McpServer]) -> None:
    """Write ``servers`` to ``mcp.toml`` atomically."""
    from magray.fileio import write_toml

    write_toml(path, {"servers": {name: s.to_dict() for name, s in sorted(servers.items())}})


def add_server(path: Path, server: McpServer, replace: bool = False) -> None:
    """Add ``server``; an existing name is an error unless ``replace``."""
    from magray.fileio import locked

    with locked(path):
        servers = load_servers(path)
        if server.name in servers and not replace:
            raise UsageError(
                f"an MCP server named {server.name!r} exists;"
                f" `magray mcp remove {server.name}` first."
            )
        save_servers(path, {**servers, server.name: server})


def remove_server(path: Path, name: str) -> McpServer:
    """Remove the server ``name`` and return it."""
    from magray.fileio import locked

    with locked(path):
        servers = load_servers(path)
        if name not in servers:
            raise NotFoundError(f"no MCP server named {name!r}", see("magray mcp list", aside=True))
        gone = servers.pop(name)
        save_servers(path, servers)
    return gone


def get_server(path: Path, name: str) -> McpServer:
    servers = load_servers(path)
    if name not in servers:
        known = ", ".join(servers) or "none configured"
        raise NotFoundError(
            f"no MCP server named {name!r} ({known}); add it with `magray mcp add`."
        )
    return servers[name]
