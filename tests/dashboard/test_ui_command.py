"""`magray ui`: opens the dashboard of a running server, or prints its address."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.dashboard.conftest import Site


def ui(site: Site | None, home: Path, *args: str, browser: str) -> subprocess.CompletedProcess[str]:
    env = {**(site.env() if site else os.environ), "BROWSER": browser}
    env["PYTHONPATH"] = str(REPO / "src")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    if site is None:
        env["MAGRAY_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "magray", "ui", *args], env=env, capture_output=True, text=True
    )


def test_ui_opens_the_dashboard_in_the_browser(site: Site, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n', encoding="utf-8")
    browser.chmod(0o755)
    port = site.url.rsplit(":", 1)[1]
    done = ui(site, tmp_path, "--port", port, browser=str(browser))
    assert done.returncode == 0, done.stderr
    assert opened.read_text() == f"{site.url}/ui/"


def test_ui_prints_the_address_without_a_browser(site: Site, tmp_path: Path) -> None:
    port = site.url.rsplit(":", 1)[1]
    done = ui(site, tmp_path, "--port", port, browser="false")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{site.url}/ui/"
    printed = ui(site, tmp_path, "--port", port, "--no-browser", browser="false")
    assert printed.stdout.strip() == f"{site.url}/ui/"


def test_ui_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    from tests.dashboard.conftest import free_port

    port = str(free_port())
    done = ui(None, tmp_path, "--port", port, browser="false")
    assert done.returncode == 1
    assert f"start one with `magray serve --port {port}`" in done.stderr
    assert "Traceback" not in done.stderr
