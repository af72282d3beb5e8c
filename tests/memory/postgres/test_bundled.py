"""The bundled PostgreSQL behind `make run-postgres`: a command runs with its memory there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import TEST_MODELS_DIR


@pytest.mark.slow
@pytest.mark.model
def test_a_command_runs_with_its_memory_on_the_bundled_postgres(
    magray_home: Path, default_model_dir: Path
) -> None:
    # The cluster's folder must be reachable by the server's own system user (under root).
    parent = Path(tempfile.mkdtemp(prefix="magray-pg-run-"))
    parent.chmod(0o755)
    magray = [sys.executable, "-m", "magray"]
    script = (
        f"{' '.join(magray)} memory add 'Кошка спит на тёплом окне' --layer assets"
        f" && {' '.join(magray)} memory search кошка --json"
        " && echo backend=$MAGRAY_MEMORY_BACKEND"
    )
    env = {**os.environ, "MAGRAY_HOME": str(magray_home), "MAGRAY_MODELS_DIR": str(TEST_MODELS_DIR)}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "magray.memory.backends.postgres.bundled", "--data",
             str(parent / "pgdata"), "--", "sh", "-c", script],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        hits = json.loads(out.stdout.splitlines()[-2])["hits"]
        assert hits[0]["text"] == "Кошка спит на тёплом окне"
        assert out.stdout.splitlines()[-1] == "backend=postgres"
        assert "memory on the bundled PostgreSQL" in out.stderr
        # Nothing was written to the embedded store.
        assert not (magray_home / "data" / "memory.db").exists()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_the_wrapper_without_a_command_explains_itself() -> None:
    from magray.memory.backends.postgres.bundled import main

    assert main([]) == 2
