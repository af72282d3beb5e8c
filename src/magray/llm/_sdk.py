"""The part the official ``openai`` and ``anthropic`` SDK providers share.

Both SDKs are generated from the same template: the same exception classes
(``APITimeoutError``, ``APIConnectionError``, ``APIStatusError``,
``APIResponseValidationError``, ``APIError``), a ``models.list`` endpoint and ``close()``.
So the provider properties and the mapping of SDK errors to MAGRAY's ProviderError tree
live here once; each provider keeps only its protocol.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from magray.errors import MagrayError, ProviderResponseError, ProviderUnavailableError
from magray.llm._http import estimate_tokens, map_status_error
from magray.llm.base import Capabilities, Message
from magray.llm.config import ProviderConfig
from magray.llm.keys import redact


def transport_kind(exc: BaseException) -> str | None:
    """'timeout' / 'connection' for the HTTP library's own errors, else None."""
    for cls in type(exc).__mro__:
        if not cls.__module__.startswith("httpx"):
            continue
        if cls.__name__ == "TimeoutException":
            return "timeout"
        if cls.__name__ in ("TransportError", "HTTPError", "StreamError"):
            return "connection"
    return None


class SdkProvider:
    """Shared properties and error mapping of the SDK-backed providers."""

    default_model: str = ""
    default_context: int = 8192

    def __init__(self, config: ProviderConfig, base_url: str, sdk: Any, client: Any) -> None:
        self.config = config
        self.base_url = base_url.rstrip("/")
        self._sdk = sdk
        self._client = client

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def model(self) -> str:
        return self.config.model or self.default_model

    @property
    def supports_tools(self) -> bool:
        return True

    @property
    def capabilities(self) -> Capabilities:
        """Chat models with native tool calling and streaming (JSON schemas are not sent)."""
        return Capabilities(
            chat_template=True,
            json_schema=False,
            native_tools=True,
            context_window=self.context_window,
            streaming=True,
        )

    @property
    def context_window(self) -> int:
        return self.config.context_window or self.default_context

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(estimate_tokens(m.content) + 4 for m in messages)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def list_models(self) -> list[str]:
        """Model ids the server offers (``GET /models``)."""
        return sorted(m.id for m in self._client.models.list(timeout=min(self.config.timeout, 10)))

    def _status_error(self, exc: Any) -> MagrayError:
        """An HTTP error status as a MAGRAY error (providers add their own codes)."""
        return map_status_error(exc, self.name, self.base_url, self.list_models)

    def _map(self, exc: BaseException) -> MagrayError:
        sdk = self._sdk
        where = f"provider {self.name!r} at {self.base_url}"
        if isinstance(exc, MagrayError):
            return exc
        if isinstance(exc, sdk.APITimeoutError) or transport_kind(exc) == "timeout":
            return ProviderUnavailableError(
                f"{where} did not answer within {self.config.timeout:g} s."
            )
        if isinstance(exc, sdk.APIConnectionError) or transport_kind(exc) == "connection":
            return ProviderUnavailableError(f"{where} cannot be reached ({redact(str(exc))}).")
        if isinstance(exc, sdk.APIStatusError):
            return self._status_error(exc)
        if isinstance(exc, (json.JSONDecodeError, sdk.APIResponseValidationError)):
            return ProviderResponseError(f"{where} sent a malformed response.")
        if isinstance(exc, sdk.APIError):
            return ProviderResponseError(
                f"provider {self.name!r} failed: {redact(str(exc))[:300]}."
            )
        return ProviderResponseError(
            f"{where} sent an unusable response ({type(exc).__name__}: {redact(str(exc))[:200]})."
        )
