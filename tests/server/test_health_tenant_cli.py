"""`magray health --tenant NAME` checks a tenant that exists; it never makes one up."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_errors_cli import fails, run


def test_health_of_an_unknown_tenant_is_not_found_and_creates_nothing(magray_home: Path) -> None:
    fails(run(["health", "--tenant", "nope"]), 3, "no tenant 'nope'", "magray auth create-key")
    assert not (magray_home / "data" / "tenants" / "nope").exists()


def test_health_of_a_tenant_named_by_a_key(magray_home: Path) -> None:
    created = run(["auth", "create-key", "--role", "reader", "--tenant", "team"])
    assert created.exit_code == 0, created.output
    checked = run(["health", "--tenant", "team", "--json"])
    assert checked.exit_code == 0, checked.output
