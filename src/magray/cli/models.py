"""`magray models ...` commands."""

from __future__ import annotations

from magray.cli.app import new_app

app = new_app("models commands.")
