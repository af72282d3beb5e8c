"""Browser tests of the dashboard: a real ``magray serve`` on loopback (real embedding model,
a scripted OpenAI-protocol LLM server), driven by Playwright through Debian's Chromium.

Chromium comes from ``scripts/system-deps.sh`` (``apt-get install chromium``); these tests
fail, never skip, when it is missing. Playwright never downloads a browser here.
Readiness is polled with a generous deadline; nothing here times the server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.agent.conftest import git
from tests.conftest import REPO, TEST_MODELS_DIR
from tests.llm.conftest import Scripted, _handler
from tests.server.llm_servers import provider_toml

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEADLINE = 180.0  # seconds: generous, only ever reached when something is broken
# Where screenshots go: docs/img when MAGRAY_DOCS_SCREENSHOTS=1, else the test's temp dir.
# (Read at import: the autouse home fixture clears MAGRAY_* variables before each test.)
DOCS_IMG = REPO / "docs" / "img"
TO_DOCS = os.environ.get("MAGRAY_DOCS_SCREENSHOTS") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    """The served dashboard: its URL, home, workspace, LLM script and one key per role."""

    url: str
    home: Path
    workspace: Path
    llm: Scripted
    log: Path
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "magray", *args],
            env=self.env(),
            capture_output=True,
            check=True,
        )
        return done.stdout.decode()

    def env(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("MAGRAY_")},
            "MAGRAY_HOME": str(self.home),
            "MAGRAY_MODELS_DIR": str(TEST_MODELS_DIR),
            "PYTHONPATH": str(REPO / "src"),
            "TEST_KEY": "sk-test-1234567890abcd",
            "MAGRAY_EMBED_THREADS": "1",
        }

    def key(self, name: str) -> str:
        return str(self.keys[name]["key"])

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-5000:]


@pytest.fixture(scope="module")
def llm() -> Iterator[Scripted]:
    from http.server import ThreadingHTTPServer
    from threading import Thread

    script = Scripted()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    httpd.daemon_threads = True
    Thread(target=httpd.serve_forever, daemon=True).start()
    script.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield script
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, llm: Scripted, default_model_dir: Path
) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("dashboard")
    home = base / "home"
    home.mkdir()
    workspace = base / "ws"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    git(workspace, "init", "-q", "-b", "main")
    (home / "config.toml").write_text(
        provider_toml(llm.url) + f'\n[tools]\nroots = "{workspace}"\n', encoding="utf-8"
    )
    port = free_port()
    site = Site(f"http://127.0.0.1:{port}", home, workspace, llm, base / "serve.log")
    for name, role, tenant in [
        ("admin", "admin", "default"),
        ("reader", "reader", "default"),
        ("acme", "writer", "acme"),
        ("globex", "writer", "globex"),
    ]:
        site.keys[name] = json.loads(
            site.cli("auth", "create-key", "--role", role, "--tenant", tenant, "--json")
        )
    with site.log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "magray", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=site.env(),
            cwd=workspace,
        )
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"magray serve exited: {site.log_text()}")
            try:
                if httpx.get(site.url + "/healthz", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"magray serve did not answer /healthz: {site.log_text()}")
            time.sleep(0.2)
        yield site
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash scripts/system-deps.sh` (it installs Debian's"
            " chromium) before the dashboard's browser tests."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(browser: Any, site: Site) -> Iterator[Any]:
    """``open_page(key_name, width=1280, height=800)``: a fresh signed-in browser page."""
    contexts: list[Any] = []

    def open_(name: str | None, width: int = 1280, height: int = 800, dark: bool = False) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme="dark" if dark else "light",
        )
        context.set_default_timeout(DEADLINE * 1000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        if name is not None:
            sign_in(page, site, site.key(name))
        return page

    yield open_
    for context in contexts:
        context.close()


def sign_in(page: Any, site: Site, key: str) -> None:
    page.goto(site.url + "/ui/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/memory")


def shot(page: Any, name: str, tmp_path: Path) -> Path:
    """A full-page screenshot (into docs/img when MAGRAY_DOCS_SCREENSHOTS=1)."""
    folder = DOCS_IMG if TO_DOCS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path
