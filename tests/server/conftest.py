"""Server fixtures: the ASGI app over a temp home with the hash embedder, and API keys."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from magray.config import load_settings
from magray.server.app import create_app
from magray.server.keys import KeyStore, Role, keys_file
from tests.agent.conftest import repo  # noqa: F401  (a temp git workspace)
from tests.fakes import HashEmbedder
from tests.llm.conftest import server  # noqa: F401  (a scripted OpenAI server)

AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(magray_home: Path) -> Iterator[AppFactory]:
    """Build a TestClient over a fresh app; settings overrides as keyword arguments."""
    clients: list[TestClient] = []

    def make(embedder: Any = "hash", **overrides: Any) -> TestClient:
        settings = load_settings({k.replace("__", "."): v for k, v in overrides.items()})
        app = create_app(settings, embedder=HashEmbedder() if embedder == "hash" else embedder)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def key(magray_home: Path) -> Callable[..., dict[str, str]]:
    """``key(role, tenant)`` → the Authorization header of a new key."""

    def make(role: str = "writer", tenant: str = "default") -> dict[str, str]:
        store = KeyStore(keys_file(load_settings().paths.data_dir))
        _, secret = store.create(Role(role), tenant)
        return {"Authorization": f"Bearer {secret}"}

    return make


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    return make_client()


#: a CLI option outside backticks (``use --force``)
_OPTION = re.compile(r"(?<![\w-])--[a-z][\w-]*")
#: a value the client sent, quoted back as Python's repr quotes it (``no conversation
#: '--tmpfs'``): the client's own words, never a CLI option the message tells it to use
_ECHOED = re.compile(r"(?<!\w)'(?:[^'\\]|\\.)*'(?!\w)|(?<!\w)\"(?:[^\"\\]|\\.)*\"(?!\w)")


def cli_words(detail: str, status: int) -> bool:
    """Whether a problem's detail names a CLI option, or a CLI command when it is the
    client's to act on (4xx): an API client can do neither. (A 5xx may name the command
    the server's operator runs.)"""
    said = _ECHOED.sub("''", detail)  # what the message says, without the client's values
    if any(_OPTION.search(part) for part in said.split("`")[::2]):
        return True
    return status < 500 and "`magray " in said


@pytest.fixture(autouse=True)
def api_details(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Collect every MAGRAY error the test's requests answered, in the API's words; afterwards,
    check that none of them names CLI words (:func:`cli_words`)."""
    from magray.errors import MagrayError, Surface
    from magray.server.problems import kind_of

    shown: list[tuple[MagrayError, str]] = []
    render = MagrayError.message_for

    def message_for(self: MagrayError, surface: Surface) -> str:
        text = render(self, surface)
        if surface == "api":
            shown.append((self, text))
        return text

    monkeypatch.setattr(MagrayError, "message_for", message_for)
    yield
    for exc, text in shown:
        assert not cli_words(text, kind_of(exc)[0]), text


def event_texts(name: str, data: Any) -> list[tuple[str, int]]:
    """The error texts of a server-sent event (ask or run) and the status each is judged by:
    an ``error`` event's problem detail; a run's result: its error, its steps' errors and a
    result that quotes an error; a plan's previews that could not be made."""
    if not isinstance(data, dict):
        return []
    if name == "error":
        return [(str(data.get("detail", "")), int(data.get("status", 500)))]
    found: list[tuple[str, int]] = []
    if name == "result":
        if data.get("error"):
            found += [(str(data["error"]), 400), (str(data.get("result", "")), 400)]
        found += [(str(s["error"]), 400) for s in data.get("steps") or [] if s.get("error")]
    if name == "plan":
        shown = [str(p.get("preview", "")) for p in data.get("previews") or []]
        found += [(text, 400) for text in shown if text.startswith("(no preview")]
    return found


@pytest.fixture(autouse=True)
def api_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Collect the events of every ask stream and agent run the test's requests made;
    afterwards, check that no error text in them names CLI words (:func:`cli_words`)."""
    from magray.server import routes_ask
    from magray.server.runs import Run

    sent: list[tuple[str, Any]] = []
    emit, event = Run.emit, routes_ask._event

    def emitted(self: Run, name: str, data: dict[str, Any], *, last: bool = False) -> None:
        sent.append((name, data))
        emit(self, name, data, last=last)

    def streamed(name: str, data: Any, n: int) -> bytes:
        sent.append((name, data))
        return event(name, data, n)

    monkeypatch.setattr(Run, "emit", emitted)
    monkeypatch.setattr(routes_ask, "_event", streamed)
    yield
    for name, data in sent:
        for text, status in event_texts(name, data):
            assert not cli_words(text, status), f"{name} event: {text}"
