"""Content hashes: the identity of a text, shared by the memory and the embedding cache."""

from __future__ import annotations

import hashlib
import unicodedata


def content_hash(text: str) -> str:
    """sha256 of the NFC-normalised text: the identity of a record's content."""
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).hexdigest()
