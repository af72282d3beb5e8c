"""Chat histories exported by other products, read as turns.

- ``chatgpt``: ChatGPT's ``conversations.json``, a list of conversations whose ``mapping``
  is a tree of messages (``author.role``, ``content.parts``, ``create_time``); the branch that
  ends at ``current_node`` is the conversation (else every message by time). System and
  tool messages and empty ones are left out.
- ``claude``: Claude's ``conversations.json``, a list of conversations with
  ``chat_messages`` of ``{sender, text, created_at}`` (``content[].text`` when ``text`` is
  empty).
- ``jsonl-chat``: one JSON object per line, ``{"session", "speaker", "text", "time"}``;
  ``time`` is Unix seconds or an ISO date/time and may be left out.

Bad input raises ``UsageError`` in one sentence naming the line or the conversation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from magray.errors import NotFoundError, UsageError
from magray.memory.records import MAX_TIME, MIN_TIME

FORMATS = ("chatgpt", "claude", "jsonl-chat")


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One message of a past conversation."""

    session: str  # the conversation's id
    speaker: str
    text: str
    at: float | None  # when it was said (Unix seconds)
    title: str | None = None  # the conversation's title, when the export has one


def parse_when(value: Any) -> float | None:
    """Unix seconds or an ISO date/time (UTC unless it says otherwise) as Unix seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"a time must be a number or an ISO date/time (got {value!r})")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date/time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp()
    else:
        raise ValueError(f"a time must be a number or an ISO date/time (got {value!r})")
    if not math.isfinite(seconds) or not MIN_TIME <= seconds <= MAX_TIME:
        raise ValueError(f"time {value!r} is outside the years 1 to 9999")
    return seconds


def _load_list(path: Path, what: str) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path} ({exc}); give a readable {what} file.") from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); give {what} as exported.") from None
    if not isinstance(data, list):
        raise UsageError(f"{path} is not {what} (a JSON list of conversations).")
    return data


def _conv_error(path: Path, i: int, conv: Any, problem: str) -> UsageError:
    name = conv.get("id") or conv.get("uuid") if isinstance(conv, dict) else None
    label = f"conversation {i + 1}" + (f" ({name})" if isinstance(name, str) else "")
    return UsageError(f"{path}: {label} {problem}; give the file as the product exported it.")


def _chatgpt_text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n".join(p for p in parts if isinstance(p, str)).strip()
    text = content.get("text")
    return text.strip() if isinstance(text, str) else ""


def _chatgpt_branch(mapping: dict[str, Any], current: Any) -> list[dict[str, Any]]:
    """The messages on the path root → ``current_node`` (else all of them by time)."""
    if isinstance(current, str) and current in mapping:
        path: list[dict[str, Any]] = []
        node: Any = mapping.get(current)
        seen: set[str] = set()
        while isinstance(node, dict) and node.get("id") not in seen:
            seen.add(str(node.get("id")))
            if isinstance(node.get("message"), dict):
                path.append(node["message"])
            parent = node.get("parent")
            node = mapping.get(parent) if isinstance(parent, str) else None
        return path[::-1]
    messages = [n["message"] for n in mapping.values() if isinstance(n, dict) and n.get("message")]
    return sorted(messages, key=lambda m: m.get("create_time") or 0.0)


def read_chatgpt(path: Path) -> Iterator[ChatTurn]:
    for i, conv in enumerate(_load_list(path, "ChatGPT's conversations.json")):
        if not isinstance(conv, dict) or not isinstance(conv.get("mapping"), dict):
            raise _conv_error(path, i, conv, "has no message mapping")
        session = str(conv.get("conversation_id") or conv.get("id") or f"chatgpt-{i + 1}")
        title = conv.get("title") if isinstance(conv.get("title"), str) else None
        for message in _chatgpt_branch(conv["mapping"], conv.get("current_node")):
            author = message.get("author")
            role = author.get("role") if isinstance(author, dict) else None
            if role not in ("user", "assistant"):
                continue
            text = _chatgpt_text(message.get("content"))
            if not text:
                continue
            try:
                at = parse_when(message.get("create_time"))
            except ValueError as exc:
                raise _conv_error(path, i, conv, f"has a bad create_time: {exc}") from None
            yield ChatTurn(session, str(role), text, at, title)


def _claude_text(message: dict[str, Any]) -> str:
    text = message.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    content = message.get("content")
    if isinstance(content, list):
        pieces = [c.get("text") for c in content if isinstance(c, dict)]
        return "\n".join(p for p in pieces if isinstance(p, str)).strip()
    return ""


def read_claude(path: Path) -> Iterator[ChatTurn]:
    for i, conv in enumerate(_load_list(path, "Claude's conversations.json")):
        if not isinstance(conv, dict) or not isinstance(conv.get("chat_messages"), list):
            raise _conv_error(path, i, conv, "has no chat_messages list")
        session = str(conv.get("uuid") or f"claude-{i + 1}")
        title = conv.get("name") if isinstance(conv.get("name"), str) else None
        for j, message in enumerate(conv["chat_messages"]):
            if not isinstance(message, dict) or not isinstance(message.get("sender"), str):
                raise _conv_error(path, i, conv, f"has message {j + 1} without a sender")
            text = _claude_text(message)
            if not text:
                continue
            try:
                at = parse_when(message.get("created_at"))
            except ValueError as exc:
                raise _conv_error(path, i, conv, f"has a bad created_at: {exc}") from None
            yield ChatTurn(session, message["sender"], text, at, title)


def read_jsonl_chat(path: Path) -> Iterator[ChatTurn]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc}); give a readable JSONL file.") from None
    with handle:
        try:
            for n, line in enumerate(handle, 1):
                if line.strip():
                    yield _jsonl_turn(path, n, line)
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not UTF-8 text; give a JSONL file.") from None


def _jsonl_turn(path: Path, n: int, line: str) -> ChatTurn:
    def bad(problem: str) -> UsageError:
        return UsageError(
            f"{path}: line {n} {problem}; each line is"
            ' {"session": ..., "speaker": ..., "text": ..., "time": ...}.'
        )

    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        raise bad("is not valid JSON") from None
    if not isinstance(obj, dict):
        raise bad("is not a JSON object")
    for key in ("session", "speaker", "text"):
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            raise bad(f"has no {key} (a non-empty string)")
    try:
        at = parse_when(obj.get("time"))
    except ValueError as exc:
        raise bad(f"has a bad time: {exc}") from None
    return ChatTurn(obj["session"], obj["speaker"], obj["text"].strip(), at)


def read_turns(path: Path, fmt: str) -> list[ChatTurn]:
    """All turns of ``path`` in ``fmt`` (one of ``FORMATS``), in conversation order."""
    readers = {"chatgpt": read_chatgpt, "claude": read_claude, "jsonl-chat": read_jsonl_chat}
    reader = readers.get(fmt)
    if reader is None:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if not path.exists():
        raise NotFoundError(f"no file {path}; give the exported conversations file.")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give the exported conversations file in it.")
    return list(reader(path))  # a pipe (`<(unzip -p export.zip conversations.json)`) reads too
