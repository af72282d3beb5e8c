"""OpenAI and every OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp, OpenRouter).

The official ``openai`` SDK speaks the chat-completions protocol; ``base_url`` points it at
any compatible server. The SDK's own retries are off (``max_retries=0``): retrying, backoff
and fallback are the router's job. SDK exceptions become MAGRAY's ProviderError tree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from magray.errors import (
    ProviderError,
    ProviderResponseError,
)
from magray.llm._http import estimate_tokens
from magray.llm._sdk import SdkProvider
from magray.llm.base import Chunk, Message, Request, ToolCall, Usage, temperature_for
from magray.llm.config import ProviderConfig

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


class OpenAIProvider(SdkProvider):
    """A chat-completions provider through the official ``openai`` SDK."""

    default_model = DEFAULT_MODEL
    default_context = DEFAULT_CONTEXT

    def __init__(self, config: ProviderConfig, api_key: str | None) -> None:
        try:
            import openai
        except ImportError:  # pragma: no cover - a core dependency
            raise ProviderError("the openai provider needs: pip install openai") from None
        base_url = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        client: OpenAI = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or NO_KEY,
            timeout=config.timeout,
            max_retries=0,
        )
        super().__init__(config, base_url, openai, client)

    # -- generation -----------------------------------------------------------------------

    def _kwargs(self, request: Request) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": to_openai_messages(request.messages),
            "stream": True,
        }
        # Always bounded: a base model behind an OpenAI-compatible server may never stop.
        kwargs["max_tokens"] = request.max_tokens or self.config.max_tokens or DEFAULT_MAX_TOKENS
        temperature = temperature_for(request, self.config.temperature)
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
