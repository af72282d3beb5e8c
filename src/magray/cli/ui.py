"""`magray ui`: open the dashboard of a running `magray serve` in the default browser."""

from __future__ import annotations

import typer

from magray.errors import MagrayError


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Where the server listens."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="The server's TCP port."),
    no_browser: bool = typer.Option(
        False, "--no-browser", help="Only print the dashboard's address."
    ),
) -> None:
    """Open the web dashboard (served by `magray serve` at /ui) in the default browser.

    Prints the address instead when there is no browser to open (or with --no-browser).

    Example: magray serve --port 8765 & magray ui --port 8765
    """
    import urllib.error
    import urllib.request
    import webbrowser

    from magray.cli.serve import check_host

    check_host(host)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    url = f"{base}/ui/"
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:
            alive = answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        alive = False
    if not alive:
        raise MagrayError(
            f"no MAGRAY server answers at {base}; start one with `magray serve --port {port}`."
        )
    if no_browser or not webbrowser.open(url):
        typer.echo(url)
        return
    typer.echo(f"Opened {url} in the browser.", err=True)
