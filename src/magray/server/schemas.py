"""Request and response bodies of the HTTP API (pydantic, at the boundary only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

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


#: a project or session name (None: none given): an empty one would filter on nothing
Name = (
    Annotated[str, Field(max_length=500), _filled("is empty; give a name, or leave it out")] | None
)
#: a question or a goal: one of spaces alone would start an answer or a run about nothing
Words = Annotated[str, _filled("is blank; give some words")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryIn(Body):
    """What ``magray memory add`` takes."""

    text: str = Text
    layer: LayerName = "interact"
    tags: list[str] = Field(default_factory=list, max_length=64)
    kind: str = Field("note", min_length=1, max_length=200)
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
    k: int = Field(10, ge=1, le=10_000)
    layers: list[LayerName] = Field(default_factory=list, max_length=3)
    tags: list[str] = Field(default_factory=list, max_length=64)
    kind: str | None = Field(None, max_length=200)
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
    priority: int = Field(3, ge=1, le=5)
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
    """A tenant: named by a key, by its data folder, or both."""

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
