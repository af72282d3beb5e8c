"""The router: which provider answers, and what happens when one fails.

For each request the chain is the requested provider (or ``[llm] default``) followed by
``[llm] fallback``. Each provider is tried with retries on retryable errors
(ProviderUnavailableError, RateLimitError): exponential backoff with full jitter, or exactly
the server's ``Retry-After`` when it sent one, on 429 and 503 alike (up to ``max_wait``). A
circuit breaker per provider opens after ``breaker_threshold`` consecutive failures and lets
one trial call through (half-open) after ``breaker_cooldown`` seconds; its state is kept in
``llm.db`` so it holds across CLI invocations. A daily token/cost budget is checked before
each call and every call's usage is recorded. Once a stream has shown text to the caller, a
failure is raised, never retried or handed to another provider: that would repeat the answer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from magray.errors import (
    BudgetExceededError,
    Listing,
    MagrayError,
    Part,
    ProviderError,
    ProviderUnavailableError,
    UsageError,
    provider_option,
    see,
)
from magray.llm.base import (
    Chunk,
    Completion,
    Provider,
    Request,
    ToolCall,
    Usage,
    estimate_usage,
)
from magray.llm.config import LLMConfig, ProviderConfig, load_llm_config
from magray.llm.keys import KeyStore, redact
from magray.llm.registry import create_provider
from magray.llm.usage import BreakerState, Call, UsageStore, day_of, read_breakers

if TYPE_CHECKING:
    from magray.config import Settings

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass(frozen=True, slots=True)
class Served:
    """Who answered the last request (after any fallback)."""

    provider: str
    model: str
    usage: Usage
    latency_ms: float
    first_token_ms: float | None


class Router:
    """Provider choice, fallback, retries, circuit breaker, budget and usage ledger."""

    def __init__(
        self,
        settings: Settings,
        *,
        config: LLMConfig | None = None,
        usage: UsageStore | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 30.0,
        base_backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_wait: float = 60.0,
    ) -> None:
        self.settings = settings
        self.config = config or load_llm_config(settings)
        self.keys = KeyStore(settings.paths.keys_file)
        self._usage = usage
        self._env = env
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown = breaker_cooldown
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self._providers: dict[str, Provider] = {}
        self.last: Served | None = None
        self._shown = False

    # -- providers ------------------------------------------------------------------------

    @property
    def usage(self) -> UsageStore:
        if self._usage is None:
            self._usage = UsageStore(self.settings.paths.llm_db)
        return self._usage

    def names(self) -> list[str]:
        return sorted(self.config.providers)

    def provider_config(self, name: str | None = None) -> ProviderConfig:
        return self.config.get(self.config.named(name))

    def provider(self, name: str | None = None) -> Provider:
        """The provider called ``name`` (default: ``[llm] default``), built on first use."""
        cfg = self.provider_config(name)
        if cfg.name not in self._providers:
            self._providers[cfg.name] = create_provider(cfg, self.settings, self.keys, self._env)
        return self._providers[cfg.name]

    def describe(self) -> list[dict[str, object]]:
        """One row per configured provider for ``magray llm list`` (builds no provider);
        callable from any thread, like :meth:`breaker_states`."""
        from magray.llm.keys import lookup_key
        from magray.llm.registry import default_model, needs_key

        rows: list[dict[str, object]] = []
        breakers = dict(self.breaker_states())
        for name in self.names():
            cfg = self.config.get(name)
            has_key = lookup_key(cfg, self.keys, self._env) is not None
            rows.append(
                {
                    "name": name,
                    "type": cfg.type,
                    "model": default_model(cfg),
                    "base_url": cfg.base_url,
                    "default": name == self.config.default,
                    "fallback": name in self.config.fallback,
                    "key": "set" if has_key else ("missing" if needs_key(cfg) else "not needed"),
                    "breaker": breakers[name],
                }
            )
        return rows

    def close(self) -> None:
        """Close provider connections and the usage database."""
        for prov in self._providers.values():
            close = getattr(prov, "close", None)
            if close is not None:
                close()
        self._providers.clear()
        if self._usage is not None:
            self._usage.close()
            self._usage = None

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- circuit breaker ------------------------------------------------------------------

    def breaker_state(self, name: str) -> str:
        return self._state_of(self.usage.breaker(name))

    def breaker_states(self) -> list[tuple[str, str]]:
        """(provider, breaker state) of each configured provider, read from the ledger on a
        connection of its own: unlike :meth:`breaker_state` it may be called from any
        thread, and never waits for the one making calls (the server's metrics)."""
        path = self._usage.path if self._usage is not None else self.settings.paths.llm_db
        saved = read_breakers(path)
        return [(name, self._state_of(saved.get(name, BreakerState()))) for name in self.names()]

    def _state_of(self, state: BreakerState) -> str:
        if state.opened_at is None:
            return CLOSED
        if self._clock() - state.opened_at >= self.breaker_cooldown:
            return HALF_OPEN
        return OPEN

    def _succeeded(self, name: str) -> None:
        if self.usage.breaker(name) != BreakerState():
            self.usage.set_breaker(name, BreakerState())

    def _failed(self, name: str) -> None:
        was = self.breaker_state(name)
        failures = self.usage.breaker(name).failures + 1
        opened = None
        if was == HALF_OPEN or failures >= self.breaker_threshold:
            opened = self._clock()
        elif was == OPEN:
            opened = self.usage.breaker(name).opened_at
        self.usage.set_breaker(name, BreakerState(failures, opened))

    # -- budget ---------------------------------------------------------------------------

    def check_budget(self) -> None:
        """BudgetExceededError when today's token or cost budget is spent."""
        cfg = self.config
        if not cfg.daily_token_budget and not cfg.daily_cost_budget_usd:
            return
        tokens, dollars = self.usage.spent(day_of(self._clock()))
        if cfg.daily_token_budget and tokens >= cfg.daily_token_budget:
            raise BudgetExceededError(
                f"today's LLM token budget is spent ({tokens} of {cfg.daily_token_budget}); "
                "raise [llm] daily_token_budget or wait until 00:00 UTC."
            )
        if cfg.daily_cost_budget_usd and dollars >= cfg.daily_cost_budget_usd:
            raise BudgetExceededError(
                f"today's LLM cost budget is spent (${dollars:.4f} of "
                f"${cfg.daily_cost_budget_usd:g}); raise [llm] daily_cost_budget_usd or wait "
                "until 00:00 UTC."
            )

    # -- generation -----------------------------------------------------------------------

    def _delay(self, attempt: int, exc: ProviderError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up on this provider."""
        if exc.retry_after is not None:  # the server said when (429, 503)
            wait = float(exc.retry_after)
            return wait if wait <= self.max_wait else None
        return self._rand() * min(self.max_backoff, self.base_backoff * 2.0**attempt)

    def _record(
        self,
        cfg: ProviderConfig,
        model: str,
        started: float,
        usage: Usage | None,
        first: float | None,
        error: str | None = None,
        ok: bool = True,
    ) -> None:
        u = usage or Usage()
        self.usage.record(
            Call(
                at=started,
                provider=cfg.name,
                model=model,
                prompt_tokens=u.prompt_tokens,
                completion_tokens=u.completion_tokens,
                latency_ms=(self._clock() - started) * 1000,
                first_token_ms=first,
                ok=ok,
                error=error,
                cost_usd=cfg.cost(u.prompt_tokens, u.completion_tokens),
            )
        )

    def _attempt(self, prov: Provider, cfg: ProviderConfig, request: Request) -> Iterator[Chunk]:
        """One call to one provider, recorded; marks ``_shown`` once text reached the caller."""
        model = request.model or prov.model
        started = self._clock()
        first: float | None = None
        usage: Usage | None = None
        said: list[str] = []
        try:
            for chunk in prov.stream(request):
                if chunk.text:
                    said.append(chunk.text)
                    if first is None:
                        first = (self._clock() - started) * 1000
                        self._shown = True
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
        except ProviderError as exc:
            self._record(cfg, model, started, usage, first, type(exc).__name__, ok=False)
            if exc.retryable:
                self._failed(cfg.name)
            raise
        except (GeneratorExit, KeyboardInterrupt):
            # Ctrl-C, in the caller (which stops reading) or inside the provider: the call
            # is recorded, and the tokens the provider never reported are estimated
            usage = usage or estimate_usage(prov, request.messages, "".join(said))
            self._record(cfg, model, started, usage, first, "interrupted")
            self.last = Served(cfg.name, model, usage, (self._clock() - started) * 1000, first)
            raise
        self._record(cfg, model, started, usage, first)
        self._succeeded(cfg.name)
        latency = (self._clock() - started) * 1000
        self.last = Served(cfg.name, model, usage or Usage(), latency, first)

    def check_model(self, name: str, model: str | None) -> None:
        """Refuse a model the provider cannot switch to: an embedded local provider runs the
        one model its table names (answering with it and reporting ``model`` would lie).

        Checked from the configuration alone, so a wrong name is refused before any model
        is installed or loaded.
        """
        if not model or self.config.get(name).type != "local":
            return
        from magray.llm.registry import default_model

        running = default_model(self.config.get(name))
        if model == running:
            return
        others = [
            n
            for n in self.names()
            if n != name and model in {default_model(self.config.get(n)), self.config.get(n).model}
        ]
        import difflib

        close = difflib.get_close_matches(model, [running], n=1, cutoff=0.6)
        mean = f" (did you mean {close[0]}?)" if close and not others else ""
        hint = (
            ("ask with ", provider_option(others[0]), ", which runs it")
            if others
            else ("leave the model out",)
        )
        raise UsageError(
            f"provider {name!r} runs its own model ({running}), not {model!r}{mean}; ",
            *hint,
            f", or set model in [llm.providers.{name}] of config.toml",
            see(Listing.PROVIDERS, aside=True),
        )

    def stream(
        self, request: Request, provider: str | None = None, *, fallback: bool = True
    ) -> Iterator[Chunk]:
        """Stream an answer from ``provider`` (or the default), falling back along the chain.

        With ``fallback=False`` only that provider is tried (``magray llm test``).

        Raises:
            BudgetExceededError: today's budget is spent (checked before any call).
            UnknownProviderError: ``provider`` is not configured.
            ProviderError: every provider in the chain failed (the first one's error class,
                naming each failure), or a stream failed after it had shown text.
        """
        chain = self.config.chain(provider)
        if not fallback:
            chain = chain[:1]
        self.check_budget()
        self.check_model(chain[0], request.model)
        self.last = None
        self._shown = False
        failures: list[tuple[str, MagrayError]] = []
        for index, name in enumerate(chain):
            cfg = self.config.get(name)
            if self.breaker_state(name) == OPEN:
                state = self.usage.breaker(name)
                left = self.breaker_cooldown - (self._clock() - (state.opened_at or 0.0))
                others = [n for n in self.config.providers if n != name]
                hint = ("; ask with ", provider_option(others[0])) if others else ()
                failures.append(
                    (
                        name,
                        ProviderUnavailableError(
                            f"provider {name!r} is paused for {max(left, 0.0):.0f} s more after"
                            f" {state.failures} failures in a row (circuit open)",
                            *hint,
                            ", or list a fallback: `magray config set llm.fallback local`",
                        ),
                    )
                )
                continue
            try:
                prov = self.provider(name)
            except MagrayError as exc:
                failures.append((name, exc))
                continue
            req = request if index == 0 else replace(request, model=None)
            req = replace(req, timeout=request.timeout or cfg.timeout)
            attempt = 0
            while True:
                try:
                    yield from self._attempt(prov, cfg, req)
                    return
                except ProviderError as exc:
                    if self._shown:
                        raise  # the caller already has part of this answer
                    wait = self._delay(attempt, exc) if exc.retryable else None
                    attempt += 1
                    if (
                        wait is None
                        or attempt > cfg.max_retries
                        or self.breaker_state(name) == OPEN
                    ):
                        failures.append((name, exc))
                        break
                    self._sleep(wait)
        raise _combined(failures)

    def complete(
        self, request: Request, provider: str | None = None, *, fallback: bool = True
    ) -> Completion:
        """The whole answer at once (the stream, collected)."""
        started = self._clock()
        text: list[str] = []
        calls: tuple[ToolCall, ...] = ()
        finish: str | None = None
        first: float | None = None
        usage = Usage()
        for chunk in self.stream(request, provider, fallback=fallback):
            if chunk.text:
                if first is None:
                    first = (self._clock() - started) * 1000
                text.append(chunk.text)
            calls += chunk.tool_calls
            usage = chunk.usage or usage
            finish = chunk.finish_reason or finish
        served = self.last
        return Completion(
            text="".join(text),
            model=served.model if served else (request.model or ""),
            provider=served.provider if served else (provider or self.config.default),
            usage=usage,
            tool_calls=calls,
            finish_reason=finish,
            latency_ms=(self._clock() - started) * 1000,
            first_token_ms=first,
        )


def _combined(failures: list[tuple[str, MagrayError]]) -> MagrayError:
    if len(failures) == 1:
        return failures[0][1]
    first = failures[0][1]
    detail: list[Part] = ["every provider failed — "]
    for n, (name, exc) in enumerate(failures):
        detail += ["; " if n else "", f"{name}: "]
        detail += [redact(p) if isinstance(p, str) else p for p in exc.clause()]
    error = type(first)(*detail, ".")
    if isinstance(error, ProviderError) and isinstance(first, ProviderError):
        error.retry_after = first.retry_after
    return error
