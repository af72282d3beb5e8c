"""What ``magray models list/info`` shows: one row of facts per model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magray.embed.install import MANIFEST, install_command, install_status, is_installed
from magray.embed.registry import MODEL_FILE, ModelSpec, all_specs, model_spec
from magray.embed.session import choose_providers

if TYPE_CHECKING:
    from magray.config import Settings


def _active_names(settings: Settings) -> set[str]:
    names: set[str] = set()
    models_dir = settings.paths.models_dir
    for name in (settings.embed.model, settings.search.reranker):
        try:
            names.add(model_spec(name, models_dir).name)
        except Exception:  # an unknown configured name is reported by `load_embedder`
            continue
    return names


def model_row(spec: ModelSpec, settings: Settings, *, probe: bool = False) -> dict[str, Any]:
    """Facts about ``spec``; with ``probe`` an installed model is loaded to report its provider.

    ``provider`` is the provider a session would use (probe: the one it does use).
    """
    models_dir = settings.paths.models_dir
    # A listing marks an unreadable folder in its row; `models info` (probe) needs the
    # model, so it fails with the one line that names the folder and the fix.
    installed, status = (
        (is_installed(spec, models_dir), "ok") if probe else install_status(spec, models_dir)
    )
    folder = spec.folder(models_dir)
    provider = choose_providers(settings.embed.device)[0]
    row: dict[str, Any] = {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "kind": spec.kind,
        "dim": spec.dim,
        "pooling": spec.pooling,
        "max_length": spec.max_length,
        "installed": installed,
        "status": status,
        # The embedder in use is active even when missing (loading it then says how to
        # install it); a reranker counts only when it is installed and would be used.
        "active": spec.name in _active_names(settings) and (installed or spec.kind != "reranker"),
        "provider": provider,
        "source": spec.source,
        "license": spec.license,
        "hub_repo": spec.hub_repo,
        "path": str(folder),
        "install": install_command(spec),
    }
    if probe:
        row["padding_side"] = spec.padding_side
        row["query_prefix"] = spec.query_prefix
        row["document_prefix"] = spec.document_prefix
        row["description"] = spec.description
        row["bytes"] = (
            sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) if installed else 0
        )
        row["manifest"] = str(folder / MANIFEST) if (folder / MANIFEST).exists() else None
        if installed:
            from magray.embed.session import OnnxSession

            session = OnnxSession(
                folder / MODEL_FILE,
                device=settings.embed.device,
                threads=settings.embed.threads,
            )
            row["provider"] = session.provider
            row["inputs"] = list(session.input_names)
    return row


def model_rows(settings: Settings) -> list[dict[str, Any]]:
    """One row per known model (built-in and user-registered)."""
    return [model_row(s, settings) for s in all_specs(settings.paths.models_dir)]
