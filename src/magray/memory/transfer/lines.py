"""One line of a MAGRAY JSONL export: encoding a record, and checking a line to import.

Timestamps are ISO 8601 UTC written with every digit of the stored float
(``magray.timefmt``), so a record round-trips exactly; unix seconds are accepted too. A
vector is base64 of
little-endian float32 with its ``dim``. ``normalise`` accepts a full exported record or a
hand-written one with just ``text`` and ``layer`` (the rest gets defaults), and checks every
field against what the store and its readers can hold: timestamps between the years 1 and
9999 (``MIN_TIME``‥``MAX_TIME``), counts and source offsets as non-negative integers that
fit SQLite's 64 bits, texts of at most ``MAX_TEXT_CHARS`` characters.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np

from magray.hashing import content_hash
from magray.memory.backends.base import StoredRow
from magray.memory.records import (
    MAX_INT,
    MAX_TAG_CHARS,
    MAX_TEXT_CHARS,
    MAX_TIME,
    MIN_TIME,
    Layer,
    Record,
    Source,
    control_char,
    invisible_char,
    new_id,
)
from magray.timefmt import parse_iso


def record_line(row: StoredRow, vector: bytes | None) -> dict[str, Any]:
    """The JSON object of one exported record."""
    out = row.record.to_dict(exact=True)
    if vector is not None:
        out["vector"] = base64.b64encode(vector).decode("ascii")
        out["dim"] = len(vector) // 4
    return out


class InvalidLine(ValueError):
    """A line that cannot be imported; the message says why."""


def _num(obj: dict[str, Any], key: str, *, default: float | None, nullable: bool) -> float | None:
    if key not in obj:
        return default
    value = obj[key]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidLine(f"{key} must be a number (got {_short(value)})")
    if (isinstance(value, int) and abs(value) > MAX_INT) or not math.isfinite(value):
        raise InvalidLine(f"{key} must be a finite number (got {_short(value)})")
    return float(value)


def _time(obj: dict[str, Any], key: str, *, default: float | None, nullable: bool) -> float | None:
    raw = obj.get(key)
    if isinstance(raw, str):  # ISO 8601, as exports write them
        try:
            value: float | None = parse_iso(raw)
        except (ValueError, OverflowError, OSError):
            raise InvalidLine(
                f"{key} must be an ISO 8601 time or unix seconds (got {_short(raw)})"
            ) from None
    else:
        value = _num(obj, key, default=default, nullable=nullable)
    if value is not None and not MIN_TIME <= value <= MAX_TIME:
        raise InvalidLine(
            f"{key} must be unix seconds between the years 1 and 9999 (got {_short(value)})"
        )
    return value


def _count(obj: dict[str, Any], key: str, *, default: int | None) -> int | None:
    """A non-negative integer that fits SQLite's 64 bits (or null when ``default`` is None)."""
    value = obj.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        kind = "a non-negative integer" + (" or null" if default is None else "")
        raise InvalidLine(f"{key} must be {kind} below 2**63 (got {_short(value)})")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidLine(f"{key} must be a string or null (got {value!r})")
    return value


def _source(source: Any) -> dict[str, Any] | None:
    if source is None:
        return None
    if not isinstance(source, dict) or not isinstance(source.get("uri"), str):
        raise InvalidLine("source must be null or an object with a string uri")
    out: dict[str, Any] = {"uri": source["uri"]}
    for key in ("start", "end", "line_start", "line_end"):
        out[key] = _count(source, key, default=None)
    for first, last in (("start", "end"), ("line_start", "line_end")):
        if out[first] is not None and out[last] is not None and out[last] < out[first]:
            raise InvalidLine(f"source {last} must not be before {first}")
    return out


def normalise(obj: Any, model_id: str, dim: int, now: float) -> dict[str, Any]:
    """Check one record object; return it complete (defaults filled) or raise InvalidLine."""
    if not isinstance(obj, dict):
        raise InvalidLine("a line must be a JSON object")
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidLine("text is missing or empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidLine(f"text has {len(text):,} characters, more than {MAX_TEXT_CHARS:,}")
    if "\x00" in text:
        raise InvalidLine("text contains NUL bytes")
    if obj.get("layer") is None:
        raise InvalidLine("missing field layer (one of interact, insights, assets)")
    try:
        layer = Layer(str(obj.get("layer")))
    except ValueError:
        raise InvalidLine(
            f"unknown layer {obj.get('layer')!r}; use one of interact, insights, assets"
        ) from None
    id_ = obj.get("id") or new_id()
    if not isinstance(id_, str) or not id_.strip():
        raise InvalidLine("id must be a non-empty string")
    kind = obj.get("kind", "note")
    if not isinstance(kind, str) or not kind.strip() or len(kind) > MAX_TAG_CHARS:
        raise InvalidLine(f"kind must be a non-empty string of at most {MAX_TAG_CHARS} characters")
    tags = obj.get("tags", [])
    if not isinstance(tags, list) or not all(
        isinstance(t, str) and t.strip() and "," not in t and len(t) <= MAX_TAG_CHARS for t in tags
    ):
        raise InvalidLine(
            f"tags must be a list of non-empty strings without commas, each at most"
            f" {MAX_TAG_CHARS} characters"
        )
    project, session = _opt_str(obj, "project"), _opt_str(obj, "session")
    for name, label in [("kind", kind), ("project", project), ("session", session)] + [
        ("a tag", tag) for tag in tags
    ]:
        for found, said in ((control_char, "a control"), (invisible_char, "a bidi or zero-width")):
            char = None if label is None else found(label)
            if char is not None:
                raise InvalidLine(
                    f"{name} {_short(label)} holds {said} character (U+{ord(char):04X})"
                )
    importance = _num(obj, "importance", default=0.5, nullable=False)
    assert importance is not None
    if not 0.0 <= importance <= 1.0:
        raise InvalidLine(f"importance must be between 0 and 1 (got {importance})")
    pinned = obj.get("pinned", False)
    if not isinstance(pinned, bool):
        raise InvalidLine("pinned must be true or false")
    access_count = _count(obj, "access_count", default=0)
    source = _source(obj.get("source"))
    chash = content_hash(text)
    if obj.get("content_hash", chash) != chash:
        raise InvalidLine("content_hash does not match the text")
    created = _time(obj, "created_at", default=now, nullable=False)
    rec: dict[str, Any] = {
        "id": id_.strip().lower(),
        "text": text,
        "layer": str(layer),
        "kind": kind,
        "tags": list(dict.fromkeys(tags)),
        "project": project or "",
        "session": session,
        "source": source,
        "created_at": created,
        "occurred_at": _time(obj, "occurred_at", default=None, nullable=True),
        "updated_at": _time(obj, "updated_at", default=created, nullable=False),
        "layer_since": _time(obj, "layer_since", default=created, nullable=False),
        "last_access_at": _time(obj, "last_access_at", default=None, nullable=True),
        "access_count": access_count,
        "importance": importance,
        "pinned": pinned,
        "promotion_score": _num(obj, "promotion_score", default=None, nullable=True),
        "content_hash": chash,
        "embedding_model": _opt_str(obj, "embedding_model"),
        "vector": None,
    }
    if obj.get("vector") is not None:
        rec["vector"] = _check_vector(obj, rec["embedding_model"], model_id, dim)
    return rec


def _check_vector(obj: dict[str, Any], model: str | None, model_id: str, dim: int) -> str:
    vec, vdim = obj.get("vector"), obj.get("dim")
    if not isinstance(vec, str):
        raise InvalidLine("vector must be a base64 string")
    if isinstance(vdim, bool) or not isinstance(vdim, int) or vdim < 1:
        raise InvalidLine("a vector needs a positive integer dim")
    try:
        blob = base64.b64decode(vec, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidLine("vector is not valid base64") from None
    if len(blob) != 4 * vdim:
        raise InvalidLine(f"vector has {len(blob) // 4} values but dim says {vdim}")
    if model == model_id and vdim != dim:
        raise InvalidLine(f"vector of {model} has dim {vdim} but the model makes {dim}")
    if not np.isfinite(np.frombuffer(blob, dtype="<f4")).all():
        raise InvalidLine("vector holds NaN or infinite values")
    return vec


def to_record(rec: dict[str, Any], model_id: str) -> Record:
    """The ``Record`` of a line checked by ``normalise`` (its vector as of ``model_id``)."""
    src = rec["source"]
    return Record(
        id=rec["id"],
        text=rec["text"],
        layer=Layer(rec["layer"]),
        kind=rec["kind"],
        tags=tuple(rec["tags"]),
        project=rec["project"] or None,
        session=rec["session"],
        source=None
        if src is None
        else Source(src["uri"], src["start"], src["end"], src["line_start"], src["line_end"]),
        created_at=rec["created_at"],
        updated_at=rec["updated_at"],
        layer_since=rec["layer_since"],
        last_access_at=rec["last_access_at"],
        access_count=rec["access_count"],
        importance=rec["importance"],
        pinned=rec["pinned"],
        promotion_score=rec["promotion_score"],
        occurred_at=rec["occurred_at"],
        content_hash=rec["content_hash"],
        embedding_model=model_id,
    )
