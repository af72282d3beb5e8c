"""`magray llm ...`: list providers, test one with a tiny prompt, show usage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import typer

from magray.cli.app import new_app

if TYPE_CHECKING:
    from magray.llm.router import Router

app = new_app("LLM providers: list, test, usage.")

TEST_PROMPT = "Reply with one short friendly sentence saying hello."


def _router() -> Router:
    from magray.cli.context import runtime

    return runtime().router


@app.command("list")
def list_providers(
    json_out: bool = typer.Option(False, "--json", help="Print JSON (a stable contract)."),
) -> None:
    """List configured providers: name, type, model, base_url, default, key, breaker.

    Example: magray llm list --json
    """
    with _router() as router:
        rows = router.describe()
    if json_out:
        typer.echo(json.dumps(rows))
        return
    typer.echo(f"{'name':<14} {'type':<10} {'model':<26} {'key':<10} {'breaker':<9} base_url")
    for r in rows:
        mark = "*" if r["default"] else ("↳" if r["fallback"] else " ")
        typer.echo(
            f"{mark}{r['name']!s:<13} {r['type']!s:<10} {r['model']!s:<26} {r['key']!s:<10}"
            f" {r['breaker']!s:<9} {r['base_url'] or '-'}"
        )


@app.command("test")
def test_provider(
    name: str | None = typer.Argument(None, help="Provider to test (default: [llm] default)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Send a tiny prompt to one provider (no fallback): latency, first token, tokens/s.

    Example: magray llm test openai --json
    """
    from magray.llm.base import Message, Request

    request = Request(messages=(Message("user", TEST_PROMPT),), max_tokens=32)
    with _router() as router:
        done = router.complete(request, name, fallback=False)
    gen_ms = done.latency_ms - (done.first_token_ms or 0.0)
    tps = done.usage.completion_tokens / (gen_ms / 1000) if gen_ms > 0 else None
    row = {
        "provider": done.provider,
        "model": done.model,
        "ok": True,
        "latency_ms": round(done.latency_ms, 1),
        "first_token_ms": None if done.first_token_ms is None else round(done.first_token_ms, 1),
        "prompt_tokens": done.usage.prompt_tokens,
        "completion_tokens": done.usage.completion_tokens,
        "tokens_per_s": None if tps is None else round(tps, 1),
        "text": done.text.strip(),
    }
    if json_out:
        typer.echo(json.dumps(row, ensure_ascii=False))
        return
    typer.echo(f"{row['provider']} ({row['model']}): {row['text']}")
    typer.echo(
        f"latency {row['latency_ms']} ms, first token {row['first_token_ms']} ms, "
        f"{row['completion_tokens']} tokens, {row['tokens_per_s']} tokens/s"
    )


@app.command("usage")
def usage(
    days: int = typer.Option(
        7, "--days", min=1, max=3660, help="How many days back (today included)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Calls, tokens, cost and latency per provider/model per day (UTC).

    Example: magray llm usage --days 30 --json
    """
    from dataclasses import asdict

    since = (datetime.now(UTC) - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    with _router() as router:
        rows = [asdict(r) for r in router.usage.totals(since)]
    if json_out:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo(f"no LLM calls since {since}.", err=True)
        return
    typer.echo(
        f"{'day':<10} {'provider':<12} {'model':<24} {'calls':>5} {'errors':>6}"
        f" {'prompt':>8} {'completion':>10} {'cost $':>8} {'avg ms':>8}"
    )
    for r in rows:
        typer.echo(
            f"{r['day']:<10} {r['provider']:<12} {r['model']:<24} {r['calls']:>5}"
            f" {r['errors']:>6} {r['prompt_tokens']:>8} {r['completion_tokens']:>10}"
            f" {r['cost_usd']:>8.4f} {r['avg_latency_ms']:>8.0f}"
        )
