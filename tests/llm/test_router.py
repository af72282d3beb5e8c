"""Router behaviour: fallback, breaker across instances, budget, no duplicated output."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import (
    BudgetExceededError,
    ProviderUnavailableError,
    UnknownProviderError,
)
from magray.llm.router import CLOSED, HALF_OPEN, OPEN, Router

from .conftest import Reply, Scripted, oa_stream
from .helpers import ROUTERS, Clock, ask, openai_toml, router


def two(server: Scripted, server2: Scripted, extra: str = "") -> str:
    return (
        f'[llm]\ndefault = "a"\nfallback = ["b"]\n{extra}\n'
        + openai_toml(server.url, "a").replace("max_retries = 2", "max_retries = 0")
        + openai_toml(server2.url, "b")
    )


def test_500_then_fallback_to_next_provider(
    server: Scripted, server2: Scripted, magray_home: Path
) -> None:
    server.add(Reply(500, {"error": {"message": "boom"}}))
    server2.add(oa_stream(["from b"]))
    r = router(magray_home, two(server, server2))
    done = r.complete(ask())
    assert (done.text, done.provider) == ("from b", "b")
    rows = {(x.provider, x.errors, x.calls) for x in r.usage.totals("2000-01-01")}
    assert rows == {("a", 1, 1), ("b", 0, 1)}


def test_retry_with_jittered_backoff(server: Scripted, magray_home: Path) -> None:
    server.add(Reply(503, {}), Reply(502, {}), oa_stream(["third time"]))
    clock = Clock()
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n', clock)
    assert r.complete(ask()).text == "third time"
    assert clock.slept == [0.25, 0.5]  # rand() = 0.5 × 0.5·2^attempt


def test_all_fail_names_each_provider(
    server: Scripted, server2: Scripted, magray_home: Path
) -> None:
    server.add(Reply(500, {}))
    server2.add(*[Reply(503, {})] * 3)
    r = router(magray_home, two(server, server2))
    with pytest.raises(ProviderUnavailableError, match=r"every provider failed — a: .*; b: "):
        r.complete(ask())


def test_breaker_opens_persists_and_half_opens(server: Scripted, magray_home: Path) -> None:
    clock = Clock()
    toml = openai_toml(server.url).replace("max_retries = 2", "max_retries = 0")
    r = router(magray_home, toml + '[llm]\ndefault = "oa"\n', clock)
    for _ in range(3):
        server.add(Reply(500, {}))
        with pytest.raises(ProviderUnavailableError):
            r.complete(ask())
    assert r.breaker_state("oa") == OPEN
    # read from any thread, on a connection of its own: the same states
    assert dict(r.breaker_states())["oa"] == OPEN
    assert threading_read(r) == r.breaker_states()
    again = Router(load_settings(), clock=clock, sleep=clock.sleep, env={"TEST_KEY": "sk-x"})
    ROUTERS.append(again)
    with pytest.raises(
        ProviderUnavailableError, match=r"paused for \d+ s more after \d+ failures in a row"
    ) as paused:
        again.complete(ask())
    assert "paused for 30 s more after 3 failures" in str(paused.value)
    assert "--provider local" in str(paused.value) and "llm.fallback" in str(paused.value)
    assert len(server.requests) == 3  # refused without calling
    clock.now += 31
    assert again.breaker_state("oa") == HALF_OPEN
    assert dict(again.breaker_states())["oa"] == HALF_OPEN
    server.add(Reply(500, {}))  # the trial call fails: open again at once
    with pytest.raises(ProviderUnavailableError):
        again.complete(ask())
    assert again.breaker_state("oa") == OPEN
    clock.now += 31
    server.add(oa_stream(["back"]))
    assert again.complete(ask()).text == "back"
    assert again.breaker_state("oa") == CLOSED
    assert dict(again.breaker_states())["oa"] == CLOSED


def threading_read(r: Router) -> list[tuple[str, str]]:
    """``r.breaker_states()`` called from another thread (the router's own connection
    belongs to this one)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(r.breaker_states).result()


def test_breaker_states_before_the_ledger_exists(magray_home: Path) -> None:
    from magray.llm.usage import read_breakers

    assert read_breakers(magray_home / "no-such" / "llm.db") == {}


def test_token_budget_refuses_before_calling(server: Scripted, magray_home: Path) -> None:
    server.add(oa_stream(["one"], usage=(60, 50)))
    toml = openai_toml(server.url) + '[llm]\ndefault = "oa"\ndaily_token_budget = 100\n'
    r = router(magray_home, toml)
    r.complete(ask())
    with pytest.raises(BudgetExceededError, match="110 of 100"):
        r.complete(ask())
    assert len(server.requests) == 1


def test_cost_budget(server: Scripted, magray_home: Path) -> None:
    server.add(oa_stream(["one"], usage=(1000, 1000)))
    toml = (
        openai_toml(server.url, extra="price_per_1k_prompt = 0.5\nprice_per_1k_completion = 1.5")
        + '[llm]\ndefault = "oa"\ndaily_cost_budget_usd = 1.0\n'
    )
    r = router(magray_home, toml)
    r.complete(ask())
    assert r.usage.totals("2000-01-01")[0].cost_usd == pytest.approx(2.0)
    with pytest.raises(BudgetExceededError, match="cost budget"):
        r.complete(ask())


def test_failure_after_text_is_raised_not_retried(
    server: Scripted, server2: Scripted, magray_home: Path
) -> None:
    server.add(
        Reply(
            events=[
                'data: {"id":"x","object":"chat.completion.chunk","created":0,'
                '"model":"m","choices":[{"index":0,"delta":{"content":"par"},'
                '"finish_reason":null}]}\n\n',
                "data: {broken\n\n",
            ]
        )
    )
    r = router(magray_home, two(server, server2))
    seen: list[str] = []
    with pytest.raises(Exception, match="malformed"):
        for chunk in r.stream(ask()):
            seen.append(chunk.text)
    assert seen == ["par"] and server2.requests == []


def test_unknown_provider_lists_configured(server: Scripted, magray_home: Path) -> None:
    r = router(magray_home, openai_toml(server.url))
    with pytest.raises(UnknownProviderError, match="configured: local, oa"):
        r.complete(ask(), provider="nope")


def test_a_local_model_given_as_provider_says_how_to_run_it(
    server: Scripted, magray_home: Path
) -> None:
    """`ask --provider local-tiny` (a name `models list` and the benchmarks use) only listed
    the configured providers."""
    r = router(magray_home, openai_toml(server.url))
    with pytest.raises(UnknownProviderError) as raised:
        r.complete(ask(), provider="local-tiny")
    assert "'local-tiny' is a local model, not a provider" in raised.value.message
    assert 'type = "local" and model = "local-tiny" under [llm.provid' in raised.value.message


def test_missing_key_falls_back_and_names_env_var(server: Scripted, magray_home: Path) -> None:
    server.add(oa_stream(["ok"]))
    toml = (
        '[llm]\ndefault = "cloud"\nfallback = ["oa"]\n[llm.providers.cloud]\n'
        'type = "anthropic"\napi_key_env = "ANTHROPIC_API_KEY"\n' + openai_toml(server.url)
    )
    r = router(magray_home, toml)
    assert r.complete(ask()).provider == "oa"
    with pytest.raises(Exception, match=r"ANTHROPIC_API_KEY.*magray keys set cloud"):
        r.provider("cloud")


@pytest.mark.parametrize("where", ["caller", "provider"])
def test_a_stream_stopped_by_ctrl_c_records_estimated_tokens(
    server: Scripted, magray_home: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Ctrl-C before the provider reported usage: the ledger row counts the prompt and the
    answer so far with the provider's own count, not 0 + 0."""
    server.add(oa_stream(["Port", " 5433", " is", " the", " one"], usage=(9, 5)))
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    prov = r.provider("oa")
    if where == "provider":  # Ctrl-C arrives while the provider reads the stream
        real = type(prov).stream

        def stopped(self: object, request: object) -> object:
            for i, chunk in enumerate(real(self, request)):  # type: ignore[arg-type]
                if i == 3:
                    raise KeyboardInterrupt
                yield chunk

        monkeypatch.setattr(type(prov), "stream", stopped)
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        for chunk in r.stream(ask()):
            said.append(chunk.text)
            if where == "caller" and len(said) == 3:
                raise KeyboardInterrupt  # the caller stops reading
    [row] = r.usage.totals("2000-01-01")
    assert row.prompt_tokens == prov.count_tokens(ask().messages) > 0
    assert row.completion_tokens == 3  # "Port 5433": ≈4 characters a token
    assert r.last is not None and r.last.usage.prompt_tokens == row.prompt_tokens
