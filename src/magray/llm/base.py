"""The values every LLM provider speaks: messages, streamed chunks, usage, and the protocol."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for (native tool calling)."""

    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role == "tool": which call this answers
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a streamed answer. The last chunk carries ``usage`` and ``finish_reason``."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None  # "stop" | "length" | "tool_calls" | "interrupted" | ...


@dataclass(frozen=True, slots=True)
class Request:
    """What to generate. ``None`` fields fall back to the provider's configuration."""

    messages: tuple[Message, ...]
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[dict[str, Any], ...] = ()  # JSON-Schema function specs (OpenAI shape)
    timeout: float | None = None  # seconds for the whole request
    #: the last user message is a raw prompt to continue (base models); chat models see
    #: it as an ordinary message
    completion: bool = False
    #: constrain the answer to JSON matching this schema where the provider can (the local
    #: provider compiles it to a llama.cpp grammar); others ignore it
    json_schema: Mapping[str, Any] | None = None
    #: the temperature to use when neither ``temperature`` nor the provider's configuration
    #: sets one (``ask`` prefers greedy answers from small models; a configured value wins)
    default_temperature: float | None = None


def temperature_for(request: Request, configured: float | None) -> float | None:
    """The request's temperature, else the provider's configured one, else the request's
    default (None: the provider's own)."""
    if request.temperature is not None:
        return request.temperature
    return configured if configured is not None else request.default_temperature


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do, declared by the provider (never guessed from names).

    The agent picks its planning strategy and its prompt budget from these fields:
    a provider without a chat template is a base model (completion prompts, worked
    examples); one that honours ``Request.json_schema`` gets grammar-constrained plans;
    one with native tools is offered ``submit_plan`` as a function.
    """

    #: the model has a chat template (False: a base model, prompted by completion)
    chat_template: bool = True
    #: ``Request.json_schema`` constrains the answer (e.g. a llama.cpp grammar)
    json_schema: bool = False
    #: native function calling (``Request.tools`` / ``Completion.tool_calls``)
    native_tools: bool = False
    #: maximum tokens of prompt plus answer
    context_window: int = 8192
    #: answers arrive in pieces as they are generated
    streaming: bool = True
    #: a small model: fewer, shorter memories in its prompts and a hint about its limits
    small: bool = False


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished (non-streamed or fully collected) answer."""

    text: str
    model: str
    provider: str
    usage: Usage = field(default_factory=Usage)
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    latency_ms: float = 0.0
    first_token_ms: float | None = None


@runtime_checkable
class Provider(Protocol):
    """An LLM backend. Errors are raised as ``magray.errors.ProviderError`` subclasses."""

    @property
    def name(self) -> str:
        """The configured provider name (e.g. ``local``, ``openai``, ``ollama``)."""
        ...

    @property
    def model(self) -> str:
        """The default model id of this provider."""
        ...

    @property
    def supports_tools(self) -> bool:
        """Whether the provider does native function calling."""
        ...

    def stream(self, request: Request) -> Iterator[Chunk]:
        """Yield the answer as it is generated; the final chunk carries usage."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """A (possibly approximate) token count of ``messages`` for context budgeting."""
        ...

    @property
    def context_window(self) -> int:
        """Maximum tokens of prompt plus answer."""
        ...


def estimate_usage(provider: Provider, messages: Sequence[Message], said: str) -> Usage:
    """The usage of a stream stopped (Ctrl-C) before ``provider`` reported it, counted with
    its own ``count_tokens`` (what its context budgeting uses): the prompt, and the answer
    so far as an assistant message less an empty one's overhead. ``Usage()`` if the count
    fails: it must not hide the Ctrl-C that stopped the call."""
    try:
        answer = provider.count_tokens((Message("assistant", said),)) if said else 0
        empty = provider.count_tokens((Message("assistant", ""),)) if said else 0
        return Usage(provider.count_tokens(messages), max(0, answer - empty))
    except Exception:
        return Usage()


@runtime_checkable
class Declares(Protocol):
    """A provider that declares its ``Capabilities`` (every built-in one does)."""

    @property
    def capabilities(self) -> Capabilities: ...


def capabilities_of(provider: Provider) -> Capabilities:
    """What ``provider`` can do: its declared ``capabilities``.

    A plugin provider that declares none is described by the two properties every
    provider has: ``supports_tools`` and ``context_window``.
    """
    if isinstance(provider, Declares):
        return provider.capabilities
    return Capabilities(
        native_tools=bool(provider.supports_tools), context_window=int(provider.context_window)
    )
