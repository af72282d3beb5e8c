"""A model's weights in a side file that ONNX Runtime maps instead of parsing.

ONNX Runtime spends most of a MiniLM session's start (about 110 of 160 ms of CPU) parsing
and copying the 90 MB of weights stored inside ``model.onnx``. Stored as external data, the
same weights are mapped from disk. The copy (``model.mapped.onnx`` and its ``.data`` file,
as large as the model) is written once next to the model, with the very same weights (only
the layout differs), and written again when ``model.onnx`` changes (size, mtime or inode,
kept in ``model.mapped.json``). Where it cannot be written (a read-only folder, a full
disk) the model is used as it is.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

log = logging.getLogger("magray")

SUFFIX = ".mapped"
MIN_TENSOR_BYTES = 1024  # smaller tensors stay inside the graph file


def _identity(model: Path) -> dict[str, int]:
    st = model.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _paths(model: Path) -> tuple[Path, Path]:
    """``model.mapped.onnx`` and ``model.mapped.json`` next to ``model.onnx``."""
    base = f"{model.stem}{SUFFIX}"
    return model.parent / f"{base}.onnx", model.parent / f"{base}.json"


def _current(model: Path) -> Path | None:
    mapped, stamp = _paths(model)
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
        data = model.parent / str(recorded["data"])
        if recorded["source"] == _identity(model) and mapped.is_file() and data.is_file():
            return mapped
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def mapped_model(model: Path) -> Path:
    """The mapped copy of ``model`` (written now if missing or stale), else ``model``.

    Only models MAGRAY installed (a folder with a ``manifest.json``) get one: a model of the
    user's own (``magray models add``) stays untouched in the user's folder.
    """
    if not (model.parent / "manifest.json").is_file():
        return model
    found = _current(model)
    if found is not None:
        return found
    try:
        return _write(model)
    except Exception as exc:  # a read-only folder, a full disk, a model onnx cannot read
        log.debug("no mapped copy of %s (%s); loading it as it is", model, exc)
        return model


def _write(model: Path) -> Path:
    from filelock import FileLock

    mapped, stamp = _paths(model)
    with FileLock(str(model.parent / f".{model.stem}{SUFFIX}.lock"), timeout=60):
        found = _current(model)
        if found is not None:
            return found
        import onnx
        from onnx.external_data_helper import uses_external_data

        from magray.fileio import atomic_path

        proto = onnx.load(str(model))
        if any(uses_external_data(t) for t in proto.graph.initializer):
            return model  # already stored that way
        data_name = f"{model.stem}{SUFFIX}.{uuid.uuid4().hex[:8]}.data"
        with atomic_path(mapped) as tmp:
            onnx.save_model(
                proto,
                str(tmp),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data_name,
                size_threshold=MIN_TENSOR_BYTES,
            )
        payload = {"source": _identity(model), "data": data_name}
        stamp.write_text(json.dumps(payload), encoding="utf-8")
        for old in model.parent.glob(f"{model.stem}{SUFFIX}.*.data"):
            if old.name != data_name:
                old.unlink(missing_ok=True)  # a process that mapped it keeps its pages
    return mapped
