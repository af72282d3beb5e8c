"""Which temperature a request is generated at."""

from __future__ import annotations

from magray.llm.base import Message, Request, temperature_for

MESSAGES = (Message("user", "hi"),)


def test_the_request_then_the_configuration_then_the_requests_default() -> None:
    greedy = Request(MESSAGES, default_temperature=0.0)
    assert temperature_for(greedy, None) == 0.0  # nothing configured: ask's greedy default
    assert temperature_for(greedy, 0.7) == 0.7  # the user's configured value wins
    assert temperature_for(Request(MESSAGES, temperature=0.3, default_temperature=0.0), 0.7) == 0.3
    assert temperature_for(Request(MESSAGES), None) is None  # the provider's own default
