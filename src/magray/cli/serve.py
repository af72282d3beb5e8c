"""`magray serve`: the HTTP API on uvicorn."""

from __future__ import annotations

from typing import Any

import typer


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
) -> None:
    """Serve MAGRAY's API (OpenAPI at /openapi.json, docs at /docs) until Ctrl-C.

    Every /v1 route needs an API key: `magray auth create-key --role writer --tenant me`.
    Ctrl-C or SIGTERM stops accepting connections and finishes the requests in flight.

    Example: magray serve --port 8765
    """
    from magray.errors import MagrayError

    try:
        import uvicorn

        import magray.server.app  # noqa: F401  (fastapi present?)
    except ImportError as exc:
        raise MagrayError(
            f"the server needs {exc.name}; install it with pip install 'magray[server]'."
        ) from None
    from magray.cli.context import settings
    from magray.observability.logs import configure_json_logs

    current = settings()  # a bad config is one clear line before anything listens
    if current.memory.backend == "postgres":
        current.memory.postgres_dsn()
    check_host(host)
    _check_port(host, port)
    configure_json_logs()
    options: dict[str, Any] = {
        "app": "magray.server.app:factory",
        "factory": True,
        "log_config": None,
        "timeout_graceful_shutdown": 30,
        "proxy_headers": False,
        # uvicorn's own parser, answering what it cannot parse with a problem body
        "http": "magray.server.protocol:ProblemHTTPProtocol",
    }
    if workers == 1:
        uvicorn.run(**options, host=host, port=port)
        return
    from magray.server.workers import serve_workers

    code = serve_workers(options, host, port, workers)  # each worker on its own socket
    if code:
        raise typer.Exit(code)


def check_host(host: str) -> None:
    """A UsageError for an empty ``--host`` (it would mean every interface to some tools)."""
    from magray.errors import UsageError

    if not host.strip():
        raise UsageError(
            "--host is empty; give an address, e.g. 127.0.0.1 (this machine only) or 0.0.0.0"
            " (every interface)."
        )


def _check_port(host: str, port: int) -> None:
    """One clear line when the address cannot be listened on (in use, not local, ...)."""
    import socket

    from magray.errors import UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, addr = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(addr)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port"
            " or --host, or stop what uses it."
        ) from None
