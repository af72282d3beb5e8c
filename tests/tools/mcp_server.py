"""A small real MCP server (stdio, or streamable HTTP with ``--http PORT``) for MAGRAY's tests."""

from __future__ import annotations

import sys

import anyio
from mcp.server.mcpserver import MCPServer

server = MCPServer("magray-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@server.tool()
async def slow(seconds: float = 30.0) -> str:
    """Sleep, then answer (for timeout tests)."""
    await anyio.sleep(seconds)
    return "woke up"


@server.tool()
def fail() -> str:
    """Always raise."""
    raise ValueError("this tool always fails")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
