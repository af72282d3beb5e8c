"""Past conversations as memories: one record per turn (or per exchange).

A record holds ``speaker: text`` (an exchange holds its turns, one per line), its
conversation id as ``session``, when it was said as ``occurred_at``, a ``speaker:<name>``
tag per speaker and ``<format>:<conversation id>`` as its source. Its kind is ``turn``:
unlike the ``exchange`` records MAGRAY writes about its own answers, imported turns are
what the user said elsewhere, and search, ``ask`` and ``chat`` recall them.

Import is incremental by content hash: a turn already stored (same layer, project and text)
is left as it is, so importing the same export again adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from magray.errors import UsageError
from magray.hashing import content_hash
from magray.memory.conversation.formats import ChatTurn, read_turns
from magray.memory.ingest.remember import validate
from magray.memory.records import Filters, Layer, NewRecord, Source
from magray.memory.service import Memory, Progress

TURN_KIND = "turn"
PER = ("turn", "exchange")


@dataclass(frozen=True, slots=True)
class ImportReport:
    conversations: int
    turns: int  # turns read from the file
    added: int  # records stored by this import
    unchanged: int  # records already in the store


def _speaker_tag(speaker: str) -> str:
    name = " ".join(speaker.replace(",", " ").split()) or "unknown"
    return f"speaker:{name}"


def _record(turns: Sequence[ChatTurn], fmt: str, layer: Layer, project: str | None) -> NewRecord:
    first = turns[0]
    return NewRecord(
        text="\n".join(f"{t.speaker}: {t.text}" for t in turns),
        layer=layer,
        kind=TURN_KIND,
        tags=tuple(dict.fromkeys(_speaker_tag(t.speaker) for t in turns)),
        project=project,
        session=first.session,
        source=Source(f"{fmt}:{first.session}"),
        occurred_at=first.at,
    )


def exchanges(turns: Sequence[ChatTurn]) -> list[list[ChatTurn]]:
    """Turns grouped into exchanges: one starts whenever a conversation's first speaker
    speaks again after someone else (a question and its answers)."""
    groups: list[list[ChatTurn]] = []
    opener: dict[str, str] = {}
    for turn in turns:
        first = opener.setdefault(turn.session, turn.speaker)
        last = groups[-1][-1] if groups else None
        opens = last is None or last.session != turn.session
        opens = opens or (last is not None and turn.speaker == first != last.speaker)
        if not opens:
            groups[-1].append(turn)
        else:
            groups.append([turn])
    return groups


def conversation_records(
    turns: Sequence[ChatTurn],
    fmt: str,
    *,
    per: str = "turn",
    layer: Layer = Layer.ASSETS,
    project: str | None = None,
) -> list[NewRecord]:
    """The records of ``turns``, in conversation order."""
    if per not in PER:
        raise UsageError(f"--per must be turn or exchange (got {per!r}).")
    groups = [[t] for t in turns] if per == "turn" else exchanges(turns)
    return [_record(group, fmt, layer, project) for group in groups]


def import_conversations(
    memory: Memory,
    path: Path,
    fmt: str,
    *,
    per: str = "turn",
    layer: Layer = Layer.ASSETS,
    project: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Store the turns of an exported chat history that the store does not hold yet."""
    turns = read_turns(path, fmt)
    items = conversation_records(turns, fmt, per=per, layer=layer, project=project)
    for item in items:
        try:
            validate(item)
        except UsageError as exc:
            raise UsageError(f"{path}: conversation {item.session}: {exc}") from None
    stored = {
        row.record.content_hash
        for row in memory.backend.iter_records(
            Filters(layers=(layer,), kind=TURN_KIND, project=project)
        )
        if (row.record.project or None) == (project or None)
    }
    new: list[NewRecord] = []
    for item in items:
        chash = content_hash(item.text)
        if chash not in stored:
            stored.add(chash)
            new.append(item)
    if new:
        memory.remember_many(new, progress)
    return ImportReport(
        conversations=len({t.session for t in turns}),
        turns=len(turns),
        added=len(new),
        unchanged=len(items) - len(new),
    )
