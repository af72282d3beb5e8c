"""Problem responses (RFC 9457): ``{"type", "title", "status", "detail"}`` for every error.

MAGRAY errors map to statuses by class (``NotFoundError`` → 404, ``UsageError`` → 422,
``DeniedError`` → 403, a locked store → 503 with ``Retry-After``, ...); malformed input gets
a 422 naming the first bad field; anything unexpected is a 500 naming the request id to look
up in the log, never a traceback.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from magray import errors as e

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("magray.server")

# (class, status, slug, title); the first matching class wins, so subclasses come first.
_MAP: tuple[tuple[type[e.MagrayError], int, str, str], ...] = (
    (e.NotFoundError, 404, "not-found", "Not found"),
    (e.UsageError, 422, "invalid-input", "Invalid input"),
    (e.DeniedError, 403, "denied", "Denied by policy"),
    (e.StoreLockedError, 503, "store-busy", "Store busy"),
    (e.StoreFullError, 507, "store-full", "Insufficient storage"),
    (e.BackupError, 409, "backup-refused", "Backup or transfer refused"),
    (e.SchemaError, 500, "store-schema", "Store written by a newer MAGRAY"),
    (e.StoreError, 500, "store-error", "Store error"),
    (e.IndexCorruptError, 500, "index-corrupt", "Index corrupt"),
    (e.DimensionMismatchError, 409, "model-mismatch", "Embedding model mismatch"),
    (e.ModelError, 503, "model-unavailable", "Model unavailable"),  # embedder or reranker
    (e.UnknownProviderError, 422, "unknown-provider", "Unknown provider or model"),
    (e.BudgetExceededError, 429, "budget-spent", "LLM budget spent"),
    (e.MissingKeyError, 503, "provider-key-missing", "LLM provider key missing"),
    (e.RateLimitError, 503, "provider-rate-limited", "LLM provider rate-limited"),
    (e.ProviderUnavailableError, 503, "provider-unavailable", "LLM provider unavailable"),
    (e.ProviderError, 502, "provider-error", "LLM provider error"),
    (e.NetworkError, 502, "network-error", "Network error"),
    (e.ConflictError, 409, "conflict", "Conflicts with the current state"),
    (e.CycleError, 409, "task-cycle", "Task dependency cycle"),
    (e.HasDependentsError, 409, "task-has-dependents", "Task has dependents"),
    (e.ToolError, 422, "tool-error", "Tool failed"),
    (e.PolicyError, 500, "policy-error", "Invalid policy"),
    (e.ConfigError, 500, "config-error", "Invalid server configuration"),
)


class Problem(Exception):
    """An HTTP error raised inside the server (auth, limits, queue) with its problem body."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}


def body(status: int, slug: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 body."""
    from magray.observability.logs import request_id

    return {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id.get(),
        **extra,
    }


def from_magray(exc: e.MagrayError) -> Problem:
    """The problem for a MAGRAY error, its detail in the API's words."""
    status, slug, title = kind_of(exc)
    headers: dict[str, str] = {}
    if status == 503:
        retry = getattr(exc, "retry_after", None) or 1
        headers["Retry-After"] = str(max(1, round(float(retry))))
    if status >= 500:
        log.error("%s: %s", type(exc).__name__, exc.message)
    return Problem(status, slug, title, exc.message_for("api"), headers)


def kind_of(exc: e.MagrayError) -> tuple[int, str, str]:
    """The status, slug and title of the problem for a MAGRAY error."""
    for cls, status, slug, title in _MAP:
        if isinstance(exc, cls):
            return status, slug, title
    return 500, "error", "Error"


def validation_detail(errors: list[Any], content_type: str | None = None) -> str:
    """One sentence for pydantic's list of validation errors (the first one named);
    ``content_type`` is the request's, to say so when the body was not sent as JSON."""
    if not errors:
        return "the request is malformed."
    first = errors[0]
    if first.get("type") == "json_invalid":
        at = [p for p in first.get("loc", ()) if p != "body"]
        why = str((first.get("ctx") or {}).get("error") or "it cannot be parsed")
        where = f" at character {at[-1]}" if at else ""
        return f"the body is not valid JSON ({why}{where}); fix it and send it again."
    whole = tuple(first.get("loc", ())) == ("body",)
    if whole and first.get("type") == "missing":
        return f"the body is empty; {_SEND_JSON}"
    if whole and first.get("type") in ("model_attributes_type", "dict_type"):
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if not (media == "application/json" or media.endswith("+json")):
            sent = f"as {media}" if media else "without a Content-Type"
            return f"the body was sent {sent}, not as JSON; {_SEND_JSON}"
        return f"the body is JSON {_json_kind(first.get('input'))}, not an object; {_SEND_JSON}"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the body"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    expected = _JSON_TYPES.get(str(first.get("type")))
    if expected is not None and "input" in first:
        got = first["input"]
        return (
            f"{where} must be {expected}, not {_json_kind(got, exact=True)}"
            f" ({_shown(got)}){more}; fix the request and send it again."
        )
    msg = str(first.get("msg", "is invalid"))
    if "Expected UploadFile" in msg:  # FastAPI's words for a form field where a file goes
        msg = "is a plain form field, not a file: send each file as a part with a filename"
    return f"{where}: {msg}{more}; fix the request and send it again."


_SEND_JSON = "send a JSON object ({...}) with Content-Type: application/json."


# The strict type errors of a JSON body (``schemas.Body``): the JSON type each one wants.
_JSON_TYPES = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "an array",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
}


def _json_kind(value: Any, *, exact: bool = False) -> str:
    """What a parsed JSON value is, in JSON's words (``an array``, ``null``...); ``exact``
    tells a boolean, an integer and a number with a fraction apart."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean" if exact else "true or false"
    if exact and isinstance(value, float):
        return "a number with a fraction" if math.isfinite(value) else "a number that is not finite"
    if exact and isinstance(value, int):
        return "an integer"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "of another kind"


def _shown(value: Any) -> str:
    """``value`` as JSON, cut to 40 characters."""
    import json

    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):  # not JSON data
        text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def unparsable_body(cause: BaseException | None) -> str:
    """The detail for a body FastAPI could not read (its 400), by the error that stopped it."""
    if isinstance(cause, RecursionError):
        return "the body's JSON nests too deeply to read; send flatter JSON."
    if isinstance(cause, ValueError) and "digits" in str(cause):  # int("9" * 5000)
        return (
            "a number in the body has more than 4,300 digits, more than the server reads;"
            " send a shorter number."
        )
    return "the body is not valid JSON in UTF-8; fix it and send it again."


def simple_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Validation errors reduced to JSON-safe ``{"loc", "msg", "type"}``."""
    return [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]
