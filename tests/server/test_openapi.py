"""Property-based requests against every route of the OpenAPI document: never a 500.

Bounded by example count (not time): ``MAX_EXAMPLES`` per operation, derandomized.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from magray.config import load_settings
from magray.server.app import create_app
from magray.server.keys import KeyStore, Role, keys_file
from tests.fakes import HashEmbedder
from tests.server.llm_servers import provider_toml

MAX_EXAMPLES = 15


def test_no_route_answers_500(magray_home: Path) -> None:
    # the only provider is a closed port: ask fails fast as a 503, never a 500
    (magray_home / "config.toml").write_text(provider_toml("http://127.0.0.1:9"), "utf-8")
    store = KeyStore(keys_file(load_settings().paths.data_dir))
    _, secret = store.create(Role.ADMIN, "fuzz")
    headers = {"Authorization": f"Bearer {secret}"}
    app = create_app(
        load_settings().with_overrides({"server.rate": 1e6, "server.burst": 10**6}),
        embedder=HashEmbedder(),
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    seen: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(headers=headers)
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            assert response.status_code < 500 or response.status_code in (502, 503), (
                f"{case.method} {case.formatted_path} → {response.status_code}:"
                f" {response.text[:500]}"
            )

        check()
    assert len(seen) == len(operations)
