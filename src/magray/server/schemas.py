"""Request and response bodies of the HTTP API (pydantic, at the boundary only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from magray.memory.records import LABEL_PATTERN

LayerName = Literal["interact", "insights", "assets"]
ModeName = Literal["hybrid", "vector", "keyword"]
Text = Field(min_length=1, max_length=200_000)


def _filled(message: str) -> AfterValidator:
    """A check that refuses a value of spaces alone, saying ``message``."""

    def check(value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", message)
        return value

    return AfterValidator(check)


#: The labels' rule (no control characters) in the API document; the memory checks it
#: (``records.check_label``) and answers a 422 that names the label and the character.
_LABEL = {"pattern": LABEL_PATTERN}
#: a record's kind or tag
Label = Annotated[str, Field(max_length=200, json_schema_extra=_LABEL)]
#: a project or session name (None: none given): an empty one would filter on nothing
Name = (
    Annotated[
        str,
        Field(max_length=500, json_schema_extra=_LABEL),
        _filled("is empty; give a name, or leave it out"),
    ]
    | None
)
#: a question or a goal: one of spaces alone would start an answer or a run about nothing
Words = Annotated[str, _filled("is blank; give some words")]


def _whole(value: Any) -> Any:
    """A float without a fraction (``1.0``) as the integer it is; anything else as given."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


#: An integer field of a body. JSON Schema (and so the API document, and clients generated
#: from it) counts ``1.0`` as the integer 1, so it is one here too; ``1.5``, ``true`` and
#: ``"1"`` are not.
Int = Annotated[int, BeforeValidator(_whole)]


class Body(BaseModel):
    """A request body: no unknown fields, and each field's JSON type as declared (strict).

    A JSON value of another type is a client's bug, not a value to convert: ``true``,
    ``"10"`` or ``1.5`` for an integer, ``1`` or ``"true"`` for a boolean, a number for a
    string, a string for an array are all 422s naming the field and the type it wants. As
    JSON Schema says, an integer is a number (``"importance": 1``) and a number without a
    fraction is an integer (``"k": 10.0``, see ``Int``).
    """

    model_config = ConfigDict(extra="forbid", strict=True)


class MemoryIn(Body):
    """What ``magray memory add`` takes."""

    text: str = Text
    layer: LayerName = "interact"
    tags: list[Label] = Field(default_factory=list, max_length=64)
    kind: Label = Field("note", min_length=1)
    project: Name = None
    session: Name = None
    importance: float = Field(0.5, ge=0.0, le=1.0)
    pin: bool = False
    at: str | None = Field(None, description="When it happened: ISO date or time (UTC by default).")


class Remembered(BaseModel):
    id: str
    layer: str
    created: bool


class BatchIn(Body):
    items: list[MemoryIn] = Field(min_length=1, max_length=1000)


class BatchOut(BaseModel):
    results: list[Remembered]


class SearchIn(Body):
    """What ``magray memory search`` takes."""

    query: str = Text
    k: Int = Field(10, ge=1, le=10_000)
    layers: list[LayerName] = Field(default_factory=list, max_length=3)
    tags: list[Label] = Field(default_factory=list, max_length=64)
    kind: Label | None = None
    project: Name = None
    session: Name = None
    created_after: str | None = Field(None, description="ISO date or time (UTC by default).")
    created_before: str | None = Field(None, description="ISO date or time (UTC by default).")
    mode: ModeName | None = None
    rerank: bool | None = None
    explain: bool = False


class SearchOut(BaseModel):
    query: str
    hits: list[dict[str, Any]]


class RecordsOut(BaseModel):
    records: list[dict[str, Any]]


class Forgotten(BaseModel):
    id: str
    forgotten: bool


class AskIn(Body):
    """What ``magray ask`` takes."""

    question: Words = Text
    provider: str | None = Field(None, max_length=200)
    model: str | None = Field(None, max_length=200)
    no_memory: bool = False
    conversation: str | None = Field(None, max_length=200)


class TaskIn(Body):
    title: str = Field(min_length=1, max_length=2000)
    priority: Int = Field(3, ge=1, le=5)
    depends_on: list[str] = Field(default_factory=list, max_length=100)
    notes: str = Field("", max_length=20_000)
    memory: list[str] = Field(default_factory=list, max_length=100)


RoleName = Literal["admin", "writer", "reader"]


class KeyIn(Body):
    """A new API key: its role and the tenant it acts in."""

    role: RoleName
    tenant: str = Field(min_length=1, max_length=63)


class KeyOut(BaseModel):
    """A key as listed: never the key itself nor its hash."""

    id: str
    role: str
    tenant: str
    created_at: str
    revoked: bool


class NewKey(BaseModel):
    """A key just made: ``key`` is shown this once and never again."""

    id: str
    key: str
    role: str
    tenant: str


class TenantOut(BaseModel):
    """A tenant: named by a key, by its data folder, or both. ``has_data``: it holds a
    memory record, a task, a conversation, an LLM call or a backup (a tenant whose requests
    only read has a folder but no data)."""

    name: str
    keys: int
    active_keys: int
    has_data: bool


class ChainCheck(BaseModel):
    """The audit chain's verification: ``first_bad`` and ``reason`` say where it broke."""

    ok: bool
    checked: int
    first_bad: int | None
    reason: str
