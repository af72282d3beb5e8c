"""`magray health --tenant NAME` checks a tenant that exists; it never makes one up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_errors_cli import fails, run


def test_health_of_an_unknown_tenant_is_not_found_and_creates_nothing(magray_home: Path) -> None:
    fails(run(["health", "--tenant", "nope"]), 3, "no tenant 'nope'", "magray auth create-key")
    assert not (magray_home / "data" / "tenants" / "nope").exists()


def test_health_of_a_tenant_named_by_a_key(magray_home: Path) -> None:
    created = run(["auth", "create-key", "--role", "reader", "--tenant", "team"])
    assert created.exit_code == 0, created.output
    checked = run(["health", "--tenant", "team", "--json"])
    assert checked.exit_code == 0, checked.output


@pytest.mark.model
def test_health_checks_the_store_the_cli_uses(default_model_dir: Path, magray_home: Path) -> None:
    for text in ("the cache lives in redis", "deploys go out on fridays"):
        assert run(["memory", "add", text]).exit_code == 0
    checked = run(["health", "--json"])
    assert checked.exit_code == 0, checked.output
    indexes = {c["name"]: c for c in json.loads(checked.stdout)["checks"]}["indexes"]
    assert indexes["detail"].startswith("2 record(s)"), indexes
    # the CLI's check opens no tenant of the server
    assert not (magray_home / "data" / "tenants").exists()
    server_default = run(["health", "--json", "--tenant", "default"])
    assert server_default.exit_code == 0, server_default.output
    indexes = {c["name"]: c for c in json.loads(server_default.stdout)["checks"]}["indexes"]
    assert indexes["detail"].startswith("0 record(s)"), indexes


def test_health_of_a_damaged_cli_store_fails_its_store_check(magray_home: Path) -> None:
    from magray.cli.context import settings

    store = settings().paths.data_dir
    store.mkdir(parents=True, exist_ok=True)
    for name in ("memory.db",):
        (store / name).write_bytes(b"this is not a database" * 100)
    checked = run(["health", "--json"])
    assert checked.exit_code == 1
    checks = {c["name"]: c for c in json.loads(checked.stdout)["checks"]}
    assert checks["store"]["ok"] is False, checks
