"""Shared fixtures: every test gets its own MAGRAY_HOME; models are shared and real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# A real PostgreSQL for the backend contract suite, migrate and bench tests.
pytest_plugins = ["tests.postgres_server"]

REPO = Path(__file__).resolve().parent.parent
# The shared data sets (``../shared/data`` beside the checkout; a git worktree nested deeper
# finds the nearest one above it). Tests that need them fail when they are missing.
SHARED_DATA = next(
    (p / "shared" / "data" for p in REPO.parents if (p / "shared" / "data").is_dir()),
    REPO.parent / "shared" / "data",
)
# One installed copy of the real models for the whole suite (`make test` fills it first).
TEST_MODELS_DIR = Path(os.environ.get("MAGRAY_TEST_MODELS_DIR", REPO / ".cache" / "models"))


@pytest.fixture(autouse=True)
def magray_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point MAGRAY_HOME at a fresh temp dir; models come from the shared test dir."""
    home = tmp_path / "magray-home"
    home.mkdir()
    monkeypatch.setenv("MAGRAY_HOME", str(home))
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(TEST_MODELS_DIR))
    for name in list(os.environ):
        if name.startswith("MAGRAY_") and name not in {
            "MAGRAY_HOME",
            "MAGRAY_MODELS_DIR",
            "MAGRAY_TEST_MODELS_DIR",
        }:
            monkeypatch.delenv(name)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    yield home


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The real default model (all-MiniLM-L6-v2, fp32), installed into the shared dir once."""
    from magray.embed import install_model

    return install_model("default", TEST_MODELS_DIR)


@pytest.fixture(scope="session")
def int8_model_dir(default_model_dir: Path) -> Path:
    """The real int8 default model, installed into the shared dir once."""
    from magray.embed import install_model

    return install_model("default-int8", TEST_MODELS_DIR)


@pytest.fixture
def real_embedder(default_model_dir: Path, magray_home: Path) -> Any:
    """The real default embedder (no cache), loaded through the public API."""
    from magray.config import load_settings
    from magray.embed import load_embedder

    return load_embedder(load_settings(), "default", cached=False)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def local_gguf() -> Path:
    """The smallest local LLM (Gemma 3 270M GGUF, `local-tiny`), assembled once from its
    installed package into the test models dir (nothing is downloaded)."""
    from magray.llm.local_install import ensure_installed
    from magray.llm.local_models import GEMMA_270M

    return ensure_installed(GEMMA_270M, TEST_MODELS_DIR)


@pytest.fixture(scope="session")
def qwen_gguf() -> Path:
    """The default local LLM (Qwen2.5-Coder-0.5B-Instruct); `make test-models` installs it.

    Tests never download: without it installed these tests fail and say how to install it.
    """
    from magray.llm.local_install import is_installed, model_path
    from magray.llm.local_models import QWEN_05B

    if not is_installed(QWEN_05B, TEST_MODELS_DIR):
        pytest.fail(
            f"the default local model is not installed in {TEST_MODELS_DIR}; run `make"
            " test-models` (or MAGRAY_MODELS_DIR=... magray models install local) first."
        )
    return model_path(QWEN_05B, TEST_MODELS_DIR)


@pytest.fixture(scope="session")
def llama_server_url(local_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server on loopback, serving the Gemma GGUF."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(local_gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chat_format",
        "gemma",
        "--n_threads",
        "1",
        "--n_ctx",
        "2048",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("llama.cpp server did not start in 120 s") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


MCP_SERVER = REPO / "tests" / "tools" / "mcp_server.py"


@pytest.fixture
def mcp_demo() -> None:
    """The test MCP server (tests/tools/mcp_server.py) registered as `demo` via `magray mcp add`."""
    import sys

    from typer.testing import CliRunner

    from magray.cli.main import app

    result = CliRunner().invoke(app, ["mcp", "add", "demo", "--", sys.executable, str(MCP_SERVER)])
    assert result.exit_code == 0, result.output
