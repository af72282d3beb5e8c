"""Helpers shared by the HTTP providers: ``Retry-After`` parsing and SDK-error mapping."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from magray.errors import (
    ProviderError,
    ProviderResponseError,
    ProviderUnavailableError,
    RateLimitError,
)
from magray.llm.keys import redact

MAX_RETRY_AFTER = 300.0


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header: a number or an HTTP date."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, min(float(ms) / 1000.0, MAX_RETRY_AFTER))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now()
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = err.get("message")
        elif isinstance(err, str):
            message = err
    text = str(message or getattr(exc, "message", None) or exc)
    text = " ".join(text.split())
    return redact(text[:300])


def map_status_error(
    exc: Any, provider: str, where: str, models: Callable[[], list[str]] | None = None
) -> ProviderError:
    """A ProviderError for an SDK ``APIStatusError`` (HTTP status ``exc.status_code``)."""
    from magray.errors import UnknownProviderError

    status = int(getattr(exc, "status_code", 0) or 0)
    detail = _detail(exc)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if status == 429:
        wait = retry_after_seconds(headers)
        hint = f"; retry after {wait:g} s" if wait is not None else ""
        return RateLimitError(
            f"provider {provider!r} is rate limited (429 from {where}{hint}).", retry_after=wait
        )
    if status in (401, 403):
        return ProviderResponseError(
            f"provider {provider!r} rejected the API key ({status}: {detail}); "
            f"set a valid one with `magray keys set {provider}`."
        )
    if status == 404:
        names: list[str] = []
        if models is not None:
            try:
                names = models()
            except Exception:  # listing is a courtesy; the 404 is the error
                names = []
        listing = f"; available: {', '.join(names[:20])}" if names else ""
        return UnknownProviderError(
            f"provider {provider!r} at {where} does not know that model ({detail}){listing}."
        )
    if status >= 500 or status in (408, 409):
        wait = retry_after_seconds(headers)
        hint = f"; retry after {wait:g} s" if wait is not None else ""
        return ProviderUnavailableError(
            f"provider {provider!r} at {where} failed with {status} ({detail}){hint}.",
            retry_after=wait,
        )
    return ProviderResponseError(f"provider {provider!r} refused the request ({status}: {detail}).")


def estimate_tokens(text: str) -> int:
    """A rough token count (≈ 4 characters a token) when a server reports no usage."""
    return max(1, (len(text) + 3) // 4) if text else 0
