"""`magray memory ...` commands."""

from __future__ import annotations

from magray.cli.app import new_app

app = new_app("memory commands.")
