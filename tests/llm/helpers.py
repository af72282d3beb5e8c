"""Building routers over scripted servers with an injected clock and sleep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magray.config import load_settings
from magray.llm.base import Message, Request
from magray.llm.router import Router


class Clock:
    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


ROUTERS: list[Router] = []  # closed after each test by conftest's autouse fixture


def router(home: Path, toml: str, clock: Clock | None = None, **kw: Any) -> Router:
    (home / "config.toml").write_text(toml, encoding="utf-8")
    clock = clock or Clock()
    made = Router(
        load_settings(),
        clock=clock,
        sleep=clock.sleep,
        rand=lambda: 0.5,
        env=kw.pop("env", {"TEST_KEY": "sk-test-1234567890abcd"}),
        **kw,
    )
    ROUTERS.append(made)
    return made


def ask(text: str = "hi", **kw: Any) -> Request:
    kw.setdefault("messages", (Message("system", "be brief"), Message("user", text)))
    return Request(**kw)


def openai_toml(url: str, name: str = "oa", extra: str = "") -> str:
    return (
        f'[llm.providers.{name}]\ntype = "openai"\nbase_url = "{url}/v1"\nmodel = "gpt-test"\n'
        f'api_key_env = "TEST_KEY"\ntimeout = 5\nmax_retries = 2\n{extra}\n'
    )
