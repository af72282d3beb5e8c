"""`magray ingest PATH...`."""

from __future__ import annotations


def ingest() -> None:
    """Ingest files and folders into memory."""
