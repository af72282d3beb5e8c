"""Task titles and notes have the same bounds at the CLI as at the HTTP API."""

from __future__ import annotations

import json

from tests.cli.test_errors_cli import fails, run


def test_a_title_longer_than_the_api_takes_is_refused() -> None:
    fails(run(["tasks", "add", "word " * 1000]), 2, "at most 2,000 characters", "--note")
    fails(run(["tasks", "add", "ok", "--note", "n" * 20_001]), 2, "at most 20,000")
    added = run(["tasks", "add", "t" * 2000, "--json"])
    assert added.exit_code == 0, added.output
    listed = run(["tasks", "list", "--json"])
    assert listed.exit_code == 0 and len(listed.stdout) > 2000


def test_an_edit_is_bounded_the_same_way() -> None:
    assert run(["tasks", "add", "short"]).exit_code == 0
    tid = json.loads(run(["tasks", "list", "--json"]).stdout)[0]["id"]
    fails(run(["tasks", "edit", tid, "--title", "x" * 2001]), 2, "at most 2,000")
