"""Anthropic's messages API through the official ``anthropic`` SDK.

The system prompt is split out of the messages, tool results become ``tool_result`` blocks,
and the streamed events (message_start … message_stop) become MAGRAY chunks with usage from
message_start / message_delta. The SDK's own retries are off: the router retries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from magray.errors import MagrayError, ProviderError, ProviderResponseError
from magray.errors import ProviderUnavailableError as Unavailable
from magray.llm._http import estimate_tokens
from magray.llm._sdk import SdkProvider
from magray.llm.base import Chunk, Message, Request, ToolCall, Usage, temperature_for
from magray.llm.config import ProviderConfig

if TYPE_CHECKING:
    from anthropic import Anthropic

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-3-5-haiku-latest"
DEFAULT_MAX_TOKENS = 1024
DEFAULT_CONTEXT = 200_000
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


def to_anthropic(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system prompt, messages) in the messages-API shape."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = []
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            for c in m.tool_calls:
                try:
                    args = json.loads(c.arguments or "{}")
                except json.JSONDecodeError:
                    args = {}
                blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": args})
            out.append({"role": "assistant", "content": blocks})
            continue
        out.append({"role": m.role, "content": m.content})
    return system, out


def to_anthropic_tools(tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-shape function specs as Anthropic tool specs."""
    out = []
    for t in tools:
        fn = t.get("function", t)
        out.append(
            {
                "name": fn["name"],
                "description": fn.get("description", ""),
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return out


class AnthropicProvider(SdkProvider):
    """Claude models through the official ``anthropic`` SDK."""

    default_model = DEFAULT_MODEL
    default_context = DEFAULT_CONTEXT

    def __init__(self, config: ProviderConfig, api_key: str) -> None:
        try:
            import anthropic
        except ImportError:  # pragma: no cover - a core dependency
            raise ProviderError("the anthropic provider needs: pip install anthropic") from None
        base_url = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        client: Anthropic = anthropic.Anthropic(
            base_url=base_url, api_key=api_key, timeout=config.timeout, max_retries=0
        )
        super().__init__(config, base_url, anthropic, client)

    def _status_error(self, exc: Any) -> MagrayError:
        if int(getattr(exc, "status_code", 0) or 0) == 529:  # overloaded
            return Unavailable(f"provider {self.name!r} at {self.base_url} is overloaded (529).")
        return super()._status_error(exc)

    def _kwargs(self, request: Request) -> dict[str, Any]:
        system, messages = to_anthropic(request.messages)
        kwargs: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": messages,
            "max_tokens": request.max_tokens or self.config.max_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if system:
            kwargs["system"] = system
        temperature = temperature_for(request, self.config.temperature)
        if temperature is not None:
            kwargs["temperature"] = min(temperature, 1.0)
        if request.stop:
            kwargs["stop_sequences"] = list(request.stop)
        if request.tools:
            kwargs["tools"] = to_anthropic_tools(request.tools)
        if request.timeout:
            kwargs["timeout"] = request.timeout
        return kwargs

    def stream(self, request: Request) -> Iterator[Chunk]:
        """Stream the answer; the last chunk carries usage, tool calls and the finish reason."""
        try:
            events = self._client.messages.create(**self._kwargs(request))
        except Exception as exc:
            raise self._map(exc) from None
        prompt = completion = 0
        finish: str | None = None
        tools: dict[int, dict[str, str]] = {}
        seen = False
        produced: list[str] = []
        try:
            try:
                for event in events:
                    kind = getattr(event, "type", None)
                    seen = True
                    if kind == "message_start":
                        u = event.message.usage
                        prompt = int(getattr(u, "input_tokens", 0) or 0)
                        completion = int(getattr(u, "output_tokens", 0) or 0)
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            tools[event.index] = {"id": block.id, "name": block.name, "args": ""}
                    elif kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            produced.append(delta.text)
                            yield Chunk(text=delta.text)
                        elif delta.type == "input_json_delta" and event.index in tools:
                            tools[event.index]["args"] += delta.partial_json or ""
                    elif kind == "message_delta":
                        reason = getattr(event.delta, "stop_reason", None)
                        if reason:
                            finish = (
                                "tool_calls"
                                if reason == "tool_use"
                                else STOP_REASONS.get(reason, reason)
                            )
                        if event.usage is not None:
                            completion = int(getattr(event.usage, "output_tokens", 0) or 0)
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
        except GeneratorExit:
            raise
        except Exception as exc:
            raise self._map(exc) from None
        if not seen:
            raise ProviderResponseError(
                f"provider {self.name!r} at {self.base_url} sent an empty response."
            )
        if completion == 0 and produced:
            completion = estimate_tokens("".join(produced))
        calls = tuple(
            ToolCall(id=t["id"], name=t["name"], arguments=t["args"] or "{}")
            for _, t in sorted(tools.items())
        )
        yield Chunk(
            tool_calls=calls, usage=Usage(prompt, completion), finish_reason=finish or "stop"
        )
