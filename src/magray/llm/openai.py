"""OpenAI and every OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp, OpenRouter).

The official ``openai`` SDK speaks the chat-completions protocol; ``base_url`` points it at
any compatible server. The SDK's own retries are off (``max_retries=0``): retrying, backoff
and fallback are the router's job. SDK exceptions become MAGRAY's ProviderError tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from magray.errors import (
    MagrayError,
    ProviderError,
    ProviderResponseError,
    ProviderUnavailableError,
)
from magray.llm._http import estimate_tokens, map_status_error
from magray.llm.base import Chunk, Message, Request, ToolCall, Usage
from magray.llm.config import ProviderConfig
from magray.llm.keys import redact

if TYPE_CHECKING:
    from openai import OpenAI

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_CONTEXT = 8192
NO_KEY = "not-needed"  # local servers ignore the key but the SDK wants one

DEFAULT_MAX_TOKENS = 1024  # when neither the request nor the config sets a limit


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """MAGRAY messages as chat-completions message dicts."""
    out: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            item["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in m.tool_calls
            ]
        if m.tool_call_id is not None:
            item["tool_call_id"] = m.tool_call_id
        if m.name is not None:
            item["name"] = m.name
        out.append(item)
    return out


def _transport_kind(exc: BaseException) -> str | None:
    """'timeout' / 'connection' for the HTTP library's own errors, else None."""
    for cls in type(exc).__mro__:
        if not cls.__module__.startswith("httpx"):
            continue
        if cls.__name__ == "TimeoutException":
            return "timeout"
        if cls.__name__ in ("TransportError", "HTTPError", "StreamError"):
            return "connection"
    return None


class OpenAIProvider:
    """A chat-completions provider through the official ``openai`` SDK."""

    def __init__(self, config: ProviderConfig, api_key: str | None) -> None:
        try:
            import openai
        except ImportError:  # pragma: no cover - a core dependency
            raise ProviderError("the openai provider needs: pip install openai") from None
        self.config = config
        self.base_url = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._sdk = openai
        self._client: OpenAI = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or NO_KEY,
            timeout=config.timeout,
            max_retries=0,
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def model(self) -> str:
        return self.config.model or DEFAULT_MODEL

    @property
    def supports_tools(self) -> bool:
        return True

    @property
    def context_window(self) -> int:
        return self.config.context_window or DEFAULT_CONTEXT

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(estimate_tokens(m.content) + 4 for m in messages)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def list_models(self) -> list[str]:
        """Model ids the server offers (``GET /models``)."""
        return sorted(m.id for m in self._client.models.list(timeout=min(self.config.timeout, 10)))

    # -- errors ---------------------------------------------------------------------------

    def _map(self, exc: BaseException) -> MagrayError:
        sdk = self._sdk
        if isinstance(exc, MagrayError):
            return exc
        if isinstance(exc, sdk.APITimeoutError) or _transport_kind(exc) == "timeout":
            return ProviderUnavailableError(
                f"provider {self.name!r} at {self.base_url} did not answer within "
                f"{self.config.timeout:g} s."
            )
        if isinstance(exc, sdk.APIConnectionError) or _transport_kind(exc) == "connection":
            return ProviderUnavailableError(
                f"provider {self.name!r} at {self.base_url} cannot be reached ({redact(str(exc))})."
            )
        if isinstance(exc, sdk.APIStatusError):
            return map_status_error(exc, self.name, self.base_url, self.list_models)
        if isinstance(exc, (json.JSONDecodeError, sdk.APIResponseValidationError)):
            return ProviderResponseError(
                f"provider {self.name!r} at {self.base_url} sent a malformed response."
            )
        if isinstance(exc, sdk.APIError):
            return ProviderResponseError(
                f"provider {self.name!r} failed: {redact(str(exc))[:300]}."
            )
        return ProviderResponseError(
            f"provider {self.name!r} at {self.base_url} sent an unusable response "
            f"({type(exc).__name__})."
        )

    # -- generation -----------------------------------------------------------------------

    def _kwargs(self, request: Request) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": to_openai_messages(request.messages),
            "stream": True,
        }
        # Always bounded: a base model behind an OpenAI-compatible server may never stop.
        kwargs["max_tokens"] = request.max_tokens or self.config.max_tokens or DEFAULT_MAX_TOKENS
        temperature = (
            self.config.temperature if request.temperature is None else request.temperature
        )
        if temperature is not None:
            kwargs["temperature"] = temperature
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.tools:
            kwargs["tools"] = [
                t if "type" in t else {"type": "function", "function": t} for t in request.tools
            ]
        if request.timeout:
            kwargs["timeout"] = request.timeout
        return kwargs

    def _open(self, kwargs: dict[str, Any]) -> Any:
        try:
            return self._client.chat.completions.create(
                **kwargs, stream_options={"include_usage": True}
            )
        except self._sdk.BadRequestError as exc:
            if "stream_options" not in str(exc):
                raise
        # an older server that rejects stream_options: stream without usage (estimated later)
        return self._client.chat.completions.create(**kwargs)

    def stream(self, request: Request) -> Iterator[Chunk]:
        """Stream the answer; the last chunk carries usage (estimated if the server sent none)."""
        kwargs = self._kwargs(request)
        try:
            stream = self._open(kwargs)
        except Exception as exc:
            raise self._map(exc) from None
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage: Usage | None = None
        finish: str | None = None
        try:
            try:
                for event in stream:
                    if getattr(event, "usage", None) is not None:
                        usage = Usage(
                            int(event.usage.prompt_tokens or 0),
                            int(event.usage.completion_tokens or 0),
                        )
                    for choice in event.choices or ():
                        finish = choice.finish_reason or finish
                        delta = choice.delta
                        if delta is None:
                            continue
                        for tc in delta.tool_calls or ():
                            slot = calls.setdefault(
                                tc.index or 0, {"id": "", "name": "", "arguments": ""}
                            )
                            slot["id"] = tc.id or slot["id"]
                            if tc.function is not None:
                                slot["name"] += tc.function.name or ""
                                slot["arguments"] += tc.function.arguments or ""
                        if delta.content:
                            text.append(delta.content)
                            yield Chunk(text=delta.content)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        except GeneratorExit:
            raise
        except Exception as exc:
            raise self._map(exc) from None
        if usage is None:
            usage = Usage(self.count_tokens(request.messages), estimate_tokens("".join(text)))
        tool_calls = tuple(
            ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"] or "{}")
            for i, c in sorted(calls.items())
        )
        if not text and not tool_calls and finish is None:
            raise ProviderResponseError(
                f"provider {self.name!r} at {self.base_url} sent an empty response."
            )
        yield Chunk(tool_calls=tool_calls, usage=usage, finish_reason=finish or "stop")
