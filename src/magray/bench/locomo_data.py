"""LoCoMo conversations and questions, read from the dataset's own JSON.

A LoCoMo file is a list of samples: ``conversation`` holds ``session_<n>`` lists of turns
``{speaker, dia_id, text, [blip_caption]}`` and ``session_<n>_date_time`` strings such as
``1:56 pm on 8 May, 2023``; ``qa`` holds questions ``{question, evidence, category}``.
Each turn becomes one document, ``Speaker said, "text"`` plus ``and shared <caption>`` when
it has an image, exactly as the paper's retrieval evaluation builds it (no date in the text).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from magray.errors import UsageError

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
_SESSION = re.compile(r"session_(\d+)$")


@dataclass(frozen=True, slots=True)
class Turn:
    dia_id: str
    session: int
    speaker: str
    text: str  # the document: ``Speaker said, "..."``
    at: float | None  # the session's date and time, plus the turn's position in seconds


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    category: int
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]


def turn_document(speaker: str, text: str, caption: str | None) -> str:
    """The paper's document of one turn."""
    doc = f'{speaker} said, "{text}"'
    return f"{doc} and shared {caption}" if caption else doc


def parse_session_time(value: Any) -> float | None:
    """``1:56 pm on 8 May, 2023`` as Unix seconds (UTC), or None when it does not parse."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.strptime(value.strip().upper(), "%I:%M %p ON %d %B, %Y")
    except ValueError:
        return None
    return when.replace(tzinfo=UTC).timestamp()


def _turns(conv: dict[str, Any], where: str) -> list[Turn]:
    sessions = sorted(
        int(m.group(1))
        for key in conv
        if (m := _SESSION.match(key)) and isinstance(conv[key], list)
    )
    turns: list[Turn] = []
    for n in sessions:
        start = parse_session_time(conv.get(f"session_{n}_date_time"))
        for i, raw in enumerate(conv[f"session_{n}"]):
            if not isinstance(raw, dict) or not all(
                isinstance(raw.get(key), str) for key in ("speaker", "dia_id", "text")
            ):
                raise UsageError(
                    f"{where}: turn {i + 1} of session {n} lacks speaker, dia_id or text;"
                    " give the LoCoMo file as published."
                )
            caption = raw.get("blip_caption")
            text = turn_document(raw["speaker"], raw["text"], caption if caption else None)
            at = None if start is None else start + i
            turns.append(Turn(raw["dia_id"], n, raw["speaker"], text, at))
    return turns


def _questions(qa: Any) -> list[Question]:
    out: list[Question] = []
    for item in qa if isinstance(qa, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            continue
        evidence = item.get("evidence") or []
        category = item.get("category")
        if not isinstance(category, int) or not isinstance(evidence, list):
            continue
        out.append(Question(item["question"], category, tuple(str(e) for e in evidence)))
    return out


def load_locomo(path: Path) -> list[Conversation]:
    """The conversations of a LoCoMo file, or of the one ``*.json`` file in a folder."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if len(files) != 1:
            raise UsageError(
                f"{path} holds {len(files)} JSON files; give the LoCoMo file itself"
                " (e.g. locomo-dev.json)."
            )
        path = files[0]
    if not path.is_file():
        raise UsageError(f"dataset {path} does not exist; give a LoCoMo JSON file or its folder.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path} is not readable JSON ({exc}); give a LoCoMo file.") from None
    if not isinstance(data, list) or not data:
        raise UsageError(f"{path} is not a LoCoMo file (a JSON list of conversations).")
    out: list[Conversation] = []
    for i, sample in enumerate(data):
        if not isinstance(sample, dict) or not isinstance(sample.get("conversation"), dict):
            raise UsageError(f"{path}: sample {i + 1} has no conversation; give a LoCoMo file.")
        cid = str(sample.get("sample_id") or f"conv-{i + 1}")
        turns = _turns(sample["conversation"], f"{path}: {cid}")
        out.append(Conversation(cid, tuple(turns), tuple(_questions(sample.get("qa")))))
    return out
