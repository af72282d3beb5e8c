"""The Docker images' build steps, run here without a Docker engine.

The Dockerfiles RUN only steps of scripts/docker-build-steps.sh; this test runs the steps
that need no network (models, check) against this checkout, and reads the Dockerfiles to
make sure they call nothing else.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_MODELS_DIR

SCRIPT = REPO / "scripts" / "docker-build-steps.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.model
def test_models_and_check_steps_pass(default_model_dir: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PYTHONPATH": str(REPO / "src"),
        "MAGRAY_MODELS_DIR": str(TEST_MODELS_DIR),
        "MAGRAY_HOME": str(tmp_path / "home"),
        "PORT": str(free_port()),
    }
    for step in ("models", "check"):
        done = subprocess.run(["bash", str(SCRIPT), step], env=env, capture_output=True)
        assert done.returncode == 0, (step, done.stdout.decode(), done.stderr.decode())
    assert b"answered /healthz" in done.stdout


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_call_only_the_proven_steps(name: str) -> None:
    text = (REPO / name).read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", text)
    runs = [line[4:] for line in joined.splitlines() if line.startswith("RUN ")]
    steps = [m for r in runs for m in re.findall(r"docker-build-steps\.sh (\w+)", r)]
    assert steps == ["install", "models", "check"]
    assert "USER magray" in text and text.index("USER magray") < text.index("ENTRYPOINT")
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert '"serve"' in text


def test_compose_has_the_server_and_postgres() -> None:
    text = (REPO / "compose.yaml").read_text(encoding="utf-8")
    assert "postgres:" in text and "magray:" in text and "pg_isready" in text


def test_compose_puts_the_memory_on_postgres_with_pgvector() -> None:
    """The compose file once set MAGRAY_PG_DSN, which nothing reads, on a postgres image
    without pgvector and an image without the driver: the server kept its memory in SQLite."""
    yaml = pytest.importorskip("yaml")  # PyYAML, which schemathesis (dev) brings

    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    magray = compose["services"]["magray"]
    env = magray["environment"]
    assert env["MAGRAY_MEMORY_BACKEND"] == "postgres"
    assert env["MAGRAY_MEMORY_DSN"].startswith("postgresql://")
    assert "@postgres:" in env["MAGRAY_MEMORY_DSN"]  # the service's host name
    assert "postgres" in magray["build"]["args"]["EXTRAS"].split(",")
    assert "ARG EXTRAS=server" in (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert compose["services"]["postgres"]["image"].startswith("pgvector/pgvector:pg")


def test_every_magray_variable_the_images_set_is_read() -> None:
    from magray.config.options import BY_KEY, env_var

    read = {env_var(key) for key in BY_KEY}
    for path in (REPO / "src" / "magray").rglob("*.py"):
        read.update(re.findall(r"[\"'](MAGRAY_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8")))
    for name in ("compose.yaml", "Dockerfile", "Dockerfile.gpu"):
        text = (REPO / name).read_text(encoding="utf-8")
        unread = set(re.findall(r"\b(MAGRAY_[A-Z0-9_]+)\b", text)) - read
        assert not unread, (name, sorted(unread))
