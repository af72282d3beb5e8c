"""MCP servers as agent tools: configuration, a synchronous client, and tool adapters.

Servers live in ``<config_dir>/mcp.toml`` (read and written by :mod:`magray.tools.mcp_config`,
whose names are re-exported here).

Every tool a server lists becomes a ``McpTool`` named ``mcp__<server>__<tool>``, with risk
``exec`` for stdio servers and ``network`` for HTTP ones, so the default policy *asks*.

The ``mcp`` SDK is asynchronous; this module is a synchronous facade over it. Each
operation (list the tools, call one tool) opens its own session, does its work and closes
it, inside ``anyio.run`` on a short-lived helper thread, so it works the same whether or not
the caller already runs an event loop. A stdio server is therefore started once per
operation: simple and leak-free, at the cost of the server's start-up time per call.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import ConfigDict

from magray.errors import MagrayError, NotFoundError, ToolError, UsageError
from magray.tools.base import (
    Tool,
    ToolArgs,
    ToolContext,
    ToolResult,
    cap_output,
)
from magray.tools.mcp_config import DEFAULT_SERVER_TIMEOUT as DEFAULT_SERVER_TIMEOUT
from magray.tools.mcp_config import McpServer as McpServer
from magray.tools.mcp_config import add_server as add_server
from magray.tools.mcp_config import check_name as check_name
from magray.tools.mcp_config import get_server as get_server
from magray.tools.mcp_config import load_servers as load_servers
from magray.tools.mcp_config import make_server as make_server
from magray.tools.mcp_config import mcp_file as mcp_file
from magray.tools.mcp_config import remove_server as remove_server
from magray.tools.mcp_config import save_servers as save_servers

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

    from magray.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "mcp__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
#: httpx errors of an HTTP server that is (for now) out of reach
_TRANSIENT_HTTP = {"ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError"}
INSTALL_HINT = "the MCP client needs the `mcp` package: pip install 'magray[mcp]'."


# --- the synchronous client -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class McpToolInfo:
    """A tool as a server lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]


def _require_sdk() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise MagrayError(INSTALL_HINT) from None


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _run_sync(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` in a fresh event loop on a helper thread and return its result."""
    import anyio

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = anyio.run(fn)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="magray-mcp", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _stderr_tail(errlog: IO[str] | None) -> str:
    if errlog is None:
        return ""
    try:
        errlog.seek(0)
        lines = [ln.strip() for ln in errlog.read().splitlines() if ln.strip()]
    except (OSError, ValueError):
        return ""
    return f" (server stderr: {lines[-1][:200]})" if lines else ""


async def _with_session(
    server: McpServer,
    connect_timeout: float,
    work: Callable[[ClientSession], Awaitable[T]],
    errlog: IO[str] | None,
) -> T:
    import anyio
    from mcp.client.session import ClientSession

    async def in_session(read: Any, write: Any) -> T:
        async with ClientSession(read, write) as session:
            with anyio.fail_after(connect_timeout):
                await session.initialize()
            return await work(session)

    if server.url:
        from mcp.client.streamable_http import streamable_http_client

        async with streamable_http_client(server.url) as streams:
            return await in_session(streams[0], streams[1])
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=server.command[0], args=list(server.command[1:]))
    async with stdio_client(params, errlog=errlog) as streams:  # type: ignore[arg-type]
        return await in_session(streams[0], streams[1])


def _session_call(
    server: McpServer,
    connect_timeout: float,
    work: Callable[[ClientSession], Awaitable[T]],
    what: str,
    deadline: float,
) -> T:
    """Open a session on ``server``, run ``work`` in it, close it; errors become ToolError."""
    _require_sdk()
    import anyio

    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        stderr = None if server.url else errlog

        async def main() -> T:
            with anyio.fail_after(deadline):
                return await _with_session(server, connect_timeout, work, stderr)

        try:
            return _run_sync(main)
        except MagrayError:
            raise
        except BaseException as exc:
            leaf = _leaf(exc)
            if isinstance(leaf, MagrayError):
                raise leaf from None
            if isinstance(leaf, KeyboardInterrupt):
                raise leaf from None
            if isinstance(leaf, TimeoutError):
                detail = "timed out"
            else:
                detail = f"{type(leaf).__name__}: {leaf}".rstrip(": ")
            # a timeout or a dropped/refused connection may pass; a server that exits
            # or answers nonsense will not
            transient = isinstance(leaf, TimeoutError | ConnectionError) or (
                server.url is not None and type(leaf).__name__ in _TRANSIENT_HTTP
            )
            raise ToolError(
                f"MCP server {server.name!r} ({server.target}): {what} failed: {detail}"
                f"{_stderr_tail(stderr)}.",
                transient=transient,
            ) from None


def list_server_tools(server: McpServer, timeout: float | None = None) -> list[McpToolInfo]:
    """The tools ``server`` offers (connecting within ``timeout``, default the server's)."""
    limit = server.timeout if timeout is None else timeout

    async def work(session: ClientSession) -> list[McpToolInfo]:
        out: list[McpToolInfo] = []
        cursor: str | None = None
        while True:
            if cursor is None:
                page = await session.list_tools()
            else:
                from mcp_types import PaginatedRequestParams

                page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
            for t in page.tools:
                schema = dict(t.input_schema or {})
                out.append(McpToolInfo(t.name, t.description or "", schema))
            cursor = page.next_cursor
            if not cursor:
                return out

    return _session_call(server, limit, work, "listing tools", limit * 2)


def _content_text(item: Any) -> str:
    kind = getattr(item, "type", "")
    if kind == "text":
        return str(item.text)
    if kind == "resource":
        resource = item.resource
        return str(getattr(resource, "text", None) or f"[resource {resource.uri}]")
    return f"[{kind or 'unknown'} content]"


def call_server_tool(
    server: McpServer, tool: str, arguments: Mapping[str, Any], timeout: float
) -> ToolResult:
    """Call ``tool`` on ``server``; the call (not the start-up) must finish within ``timeout``."""
    import anyio

    async def work(session: ClientSession) -> ToolResult:
        try:
            with anyio.fail_after(timeout):
                result = await session.call_tool(tool, dict(arguments))
        except TimeoutError:
            raise ToolError(
                f"MCP tool {tool!r} on server {server.name!r} did not answer within "
                f"{timeout:g} s; raise the timeout or check the server.",
                transient=True,
            ) from None
        text = "\n".join(_content_text(c) for c in result.content)
        data = result.structured_content
        if data is None:
            data = {"content": text}
        if result.is_error:
            return ToolResult(ok=False, output=text, data=data, error=text or "the tool failed")
        return ToolResult(ok=True, output=text, data=data)

    return _session_call(
        server, server.timeout, work, f"calling {tool!r}", server.timeout + timeout
    )


# --- tools for the agent --------------------------------------------------------------------


class McpArgs(ToolArgs):
    """Any JSON object: the server's schema is checked in ``McpTool.parse``."""

    model_config = ConfigDict(extra="allow", frozen=True)


def _takes(schema: Mapping[str, Any]) -> str:
    """``it takes a (required), b`` from a tool's input schema, in the schema's order."""
    props = schema.get("properties")
    names = list(props) if isinstance(props, Mapping) else []
    required = schema.get("required")
    need = {str(k) for k in required} if isinstance(required, list) else set()
    names += sorted(k for k in need if k not in names)
    if not names:
        return "it takes no arguments"
    return "it takes " + ", ".join(f"{n} (required)" if n in need else n for n in names)


def _argument_problems(schema: Mapping[str, Any], raw: Mapping[str, Any]) -> list[str]:
    """Missing required and unknown arguments, named; unknown ones only where the schema
    lists its properties and does not allow others."""
    problems: list[str] = []
    required = schema.get("required")
    if isinstance(required, list):
        missing = [str(k) for k in required if k not in raw]
        problems += [f"missing argument {k!r}" for k in missing]
    props = schema.get("properties")
    extra = schema.get("additionalProperties", False)
    if isinstance(props, Mapping) and extra is False:
        problems += [f"unknown argument {k!r}" for k in raw if k not in props]
    return problems


def _check_schema(tool: str, schema: Mapping[str, Any], raw: Mapping[str, Any]) -> None:
    """Check ``raw`` against the tool's input schema; a UsageError names what is wrong
    and lists the arguments the tool takes."""
    problems = _argument_problems(schema, raw)
    if problems:
        raise UsageError(
            f"{tool}: invalid arguments ({'; '.join(problems)}); {_takes(schema)}."
        ) from None
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - jsonschema comes with mcp
        return
    try:
        jsonschema.validate(dict(raw), dict(schema))
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "arguments"
        raise UsageError(
            f"{tool}: invalid arguments ({where}: {exc.message}); {_takes(schema)}."
        ) from None
    except jsonschema.SchemaError:
        log.debug("MCP tool %s has an invalid input schema; arguments not checked", tool)


class McpTool(Tool[McpArgs]):
    """A tool of an MCP server; ``tool_for`` makes one class per server tool."""

    Args = McpArgs
    server: ClassVar[McpServer]
    remote_name: ClassVar[str]
    input_schema: ClassVar[dict[str, Any]]

    @classmethod
    def schema(cls) -> dict[str, Any]:
        schema = dict(cls.input_schema)
        schema.pop("title", None)
        schema.setdefault("type", "object")
        return schema

    def parse(self, raw: Mapping[str, Any]) -> McpArgs:
        _check_schema(self.name, self.schema(), raw)
        return super().parse(raw)

    def arguments(self, args: McpArgs) -> dict[str, Any]:
        return dict(args.model_extra or {})

    def preview(self, args: McpArgs, ctx: ToolContext) -> str:
        shown = json.dumps(self.arguments(args), ensure_ascii=False, sort_keys=True)
        return f"MCP server {self.server.name} ({self.server.target}): {self.remote_name} {shown}"

    def run(self, args: McpArgs, ctx: ToolContext) -> ToolResult:
        timeout = min(ctx.timeout, self.server.timeout)
        result = call_server_tool(self.server, self.remote_name, self.arguments(args), timeout)
        return ToolResult(
            ok=result.ok,
            output=cap_output(result.output, ctx.output_cap),
            data=result.data,
            error=result.error,
        )


def tool_name(server: str, tool: str) -> str:
    """``mcp__<server>__<tool>``, with characters function calling refuses replaced by ``_``."""
    return f"{PREFIX}{server}__{_UNSAFE.sub('_', tool)}"


def tool_for(server: McpServer, info: McpToolInfo) -> McpTool:
    """A ``McpTool`` for ``info`` on ``server``."""
    name = tool_name(server.name, info.name)
    description = info.description.strip() or f"{info.name} (MCP server {server.name})"
    cls = type(
        f"McpTool_{_UNSAFE.sub('_', name)}",
        (McpTool,),
        {
            "name": name,
            "description": f"[MCP {server.name}] {description}",
            "risk": server.risk,
            "server": server,
            "remote_name": info.name,
            "input_schema": info.input_schema,
        },
    )
    tool: McpTool = cls()
    return tool


def server_tools(server: McpServer, timeout: float | None = None) -> list[McpTool]:
    """Adapters for every tool ``server`` lists."""
    return [tool_for(server, info) for info in list_server_tools(server, timeout)]


def discover(
    registry: ToolRegistry,
    config_dir: Path,
    timeout: float | None = None,
    *,
    only: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[McpTool]:
    """Register the tools of every configured server (or only the server ``only``).

    Servers are asked concurrently, so discovery takes as long as the slowest server,
    at most ``timeout`` seconds each. A server that fails is one warning; the others
    still register. Returns the tools added, in server then tool order.

    Raises:
        NotFoundError: ``only`` names no configured server.
    """
    say = warn or (lambda msg: log.warning("%s", msg))
    servers = load_servers(mcp_file(config_dir))
    if only is not None:
        if only not in servers:
            raise NotFoundError(
                f"no MCP server named {only!r}; see `magray mcp list` or add it with "
                "`magray mcp add`."
            )
        servers = {only: servers[only]}
    if not servers:
        return []
    from concurrent.futures import ThreadPoolExecutor

    def listed(server: McpServer) -> list[McpTool] | MagrayError:
        try:
            return server_tools(server, timeout)
        except MagrayError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
        answers = list(pool.map(listed, servers.values()))
    added: list[McpTool] = []
    for server, answer in zip(servers.values(), answers, strict=True):
        if isinstance(answer, MagrayError):
            say(f"MCP server {server.name} skipped: {answer.message}")
            continue
        for tool in answer:
            try:
                registry.register(tool)
            except MagrayError as exc:
                say(f"MCP tool {tool.name} skipped: {exc.message}")
                continue
            added.append(tool)
    return added


def server_of(tool_name_: str) -> str | None:
    """The server part of ``mcp__<server>__<tool>``, or None for other names."""
    if not tool_name_.startswith(PREFIX):
        return None
    server, sep, _ = tool_name_[len(PREFIX) :].partition("__")
    return server if sep and server else None
