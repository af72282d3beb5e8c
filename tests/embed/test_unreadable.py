"""A models folder this user may not read is one line naming the folder and what to do.

Tests run as root, which reads everything: the refusal a non-root user gets is made by
patching the call that fails (``Path.is_file``/``exists``, ``os.access``)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.embed import model_spec
from magray.embed.install import is_installed, verify
from magray.embed.registry import user_specs
from magray.errors import ModelError
from tests.embed.test_install import _copy_default


def refuse_under(monkeypatch: pytest.MonkeyPatch, folder: Path, name: str) -> None:
    """``Path.<name>`` raises PermissionError for every path inside ``folder``."""
    real = getattr(Path, name)

    def denied(self: Path, *args: object, **kwargs: object) -> bool:
        if self.is_relative_to(folder) and self != folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return bool(real(self, *args, **kwargs))

    monkeypatch.setattr(Path, name, denied)


def test_an_unreadable_models_folder_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    refuse_under(monkeypatch, models, "exists")
    with pytest.raises(ModelError) as caught:
        user_specs(models)
    message = caught.value.message
    assert f"the models folder {models} cannot be read (permission denied)" in message
    assert f"chmod -R u+rX {models}" in message and "MAGRAY_MODELS_DIR" in message
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(models))
    r = CliRunner().invoke(app, ["models", "list"])
    assert r.exit_code == 1
    assert r.output.startswith(f"error: the models folder {models} cannot be read")
    assert "unexpected" not in r.output and len(r.output.strip().splitlines()) == 1


@pytest.fixture
def unreadable_default(
    default_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    """(models folder, the default model's folder), the model's folder unreadable."""
    models = tmp_path / "models"
    folder = _copy_default(default_model_dir, models)
    refuse_under(monkeypatch, folder, "is_file")
    return models, folder


def test_an_unreadable_model_folder_names_the_model(unreadable_default: tuple[Path, Path]) -> None:
    models, folder = unreadable_default
    spec = model_spec("default")
    with pytest.raises(ModelError, match=f"the folder of model {spec.name}, {folder}, cannot"):
        is_installed(spec, models)


def test_an_unreadable_model_file_is_named_before_onnx_runtime_opens_it(
    default_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    folder = _copy_default(default_model_dir, models)
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: Path(p).name != "model.onnx" and real(p, mode)
    )
    with pytest.raises(ModelError, match=f"chmod -R u\\+rX {folder}"):
        verify(model_spec("default"), models, fresh=True)


def test_one_unreadable_model_folder_is_one_marked_row_of_the_listing(
    unreadable_default: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    models, folder = unreadable_default
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(models))
    runner = CliRunner()
    r = runner.invoke(app, ["models", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    name = model_spec("default").name
    assert rows[name]["status"] == "unreadable: permission denied"
    assert not rows[name]["installed"]
    assert {"bge-m3", "qwen2.5-coder-0.5b"} <= set(rows)
    assert all(row["status"] == "ok" for n, row in rows.items() if n != name)
    assert f"chmod -R u+rX {folder}" in r.stderr
    table = runner.invoke(app, ["models", "list"])
    assert table.exit_code == 0, table.output
    line = next(x for x in table.stdout.splitlines() if x.startswith(f"{name} "))
    assert line.endswith("(unreadable: permission denied)")
    # A command that needs the model still fails with the one line naming the folder.
    info = runner.invoke(app, ["models", "info", "default"])
    assert info.exit_code == 1
    assert info.output.startswith(f"error: the folder of model {name}, {folder}, cannot be read")
