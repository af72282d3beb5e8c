"""Few-shot planning for small base models: the nearest worked examples and a JSON grammar.

A base model of a few hundred million parameters cannot read a catalogue of twenty-five
tools and pick one; it can continue a pattern. So the prompt shows the worked examples
(``magray.agent.examples``) most similar to the request, and the answer is constrained to
JSON of the plan's shape — one alternative per candidate tool (the tools of the chosen
examples), each with that tool's argument schema — so every answer parses and names a
real tool. A direct answer is always allowed.

Similarity is cosine over the embedding model's vectors when one can be loaded, else word
overlap (Jaccard), so planning never depends on the embedding model being installed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from magray.agent.examples import EXAMPLES
from magray.agent.plan import Plan
from magray.errors import MagrayError
from magray.tools.registry import ToolRegistry

log = logging.getLogger("magray")

Example = tuple[str, Mapping[str, Any]]
#: the candidate meaning "answer directly, no tool"
ANSWER = "answer"

HEAD = (
    "Each request is answered with JSON: a plan of tool steps that carry it out, or "
    '{"answer": "..."} when no tool is needed.'
)
STOP = ("\nRequest:",)
_WORD = re.compile(r"[a-z0-9_.]+")
#: JSON-Schema keywords llama.cpp's grammar converter understands; the rest are dropped
_KEEP = {
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "additionalProperties",
    "description",
}


class Embeds(Protocol):
    def embed_documents(self, texts: Sequence[str]) -> Any: ...

    def embed_queries(self, texts: Sequence[str]) -> Any: ...


def example_tools(answer: Mapping[str, Any]) -> set[str]:
    return {str(s.get("tool")) for s in answer.get("steps", []) if isinstance(s, Mapping)}


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


class ExampleSelector:
    """Picks the ``k`` worked examples closest to a request.

    ``embedder`` is a factory called once, on first use; if it fails (no model installed)
    the selector says so once in the log and falls back to word overlap. With
    ``follow_nearest`` the nearest example decides the tools (or a direct answer) and the
    model fills in the arguments; otherwise the model chooses among the examples' tools.
    """

    def __init__(
        self,
        embedder: Callable[[], Embeds] | None = None,
        *,
        examples: Sequence[Example] = EXAMPLES,
        k: int = 6,
        follow_nearest: bool = False,
    ) -> None:
        self._factory = embedder
        self._embedder: Embeds | None = None
        self._vectors: Any = None
        self.examples = list(examples)
        self.k = k
        self.follow_nearest = follow_nearest

    @property
    def method(self) -> str:
        return "embedding" if self._factory is not None else "lexical"

    def candidates(self, shots: Sequence[Example]) -> set[str] | None:
        """What the model may choose from: the tools of the chosen examples, or a direct
        answer (``ANSWER``). With ``follow_nearest`` only what the nearest example did."""
        if self.follow_nearest and shots:
            nearest = shots[-1][1]
            return example_tools(nearest) or {ANSWER}
        tools: set[str] = {ANSWER}
        for _, answer in shots:
            tools |= example_tools(answer)
        return tools

    def _embed(self) -> Embeds | None:
        if self._factory is None:
            return None
        if self._embedder is None:
            try:
                self._embedder = self._factory()
                self._vectors = self._embedder.embed_documents([q for q, _ in self.examples])
            except MagrayError as exc:
                log.warning("planning examples chosen by word overlap: %s", exc.message)
                self._factory = None
                return None
        return self._embedder

    def scores(self, goal: str) -> list[float]:
        embedder = self._embed()
        if embedder is not None:
            import numpy as np

            query = np.asarray(embedder.embed_queries([goal]))[0]
            return [float(x) for x in np.asarray(self._vectors) @ query]
        words = _words(goal)
        return [len(words & _words(q)) / (len(words | _words(q)) or 1) for q, _ in self.examples]

    def select(self, goal: str, registry: ToolRegistry) -> list[Example]:
        """The closest examples whose tools all exist, least similar first."""
        scored = [
            (score, i)
            for i, score in enumerate(self.scores(goal))
            if example_tools(self.examples[i][1]) <= set(registry.names())
        ]
        best = sorted(scored, key=lambda t: (-t[0], t[1]))[: self.k]
        return [self.examples[i] for _, i in reversed(best)]


class FixedSelector(ExampleSelector):
    """The same examples for every request (the baseline ``magray bench agent`` compares)."""

    @property
    def method(self) -> str:
        return "fixed"

    def candidates(self, shots: Sequence[Example]) -> set[str] | None:
        return None  # every tool: the examples say nothing about this request

    def scores(self, goal: str) -> list[float]:
        # evenly spread over the list, so most tool families appear once
        step = max(1, len(self.examples) // self.k)
        return [1.0 if i % step == 0 else 0.0 for i in range(len(self.examples))]


#: base models write linear plans of at most this many steps
MAX_STEPS = 3
MAX_ANSWER_CHARS = 400


def compact(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The form base models read and write: steps as ``{"tool", "args"}``, run in order.

    (Measured with `magray bench agent`: the same tool accuracy as full steps with ids and
    depends_on, at less than half the latency.)
    """
    if "steps" not in answer:
        return dict(answer)
    return {"steps": [{"tool": s["tool"], "args": s.get("args", {})} for s in answer["steps"]]}


def chain(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A base model's steps as a linear plan: ids s1, s2, … each after the one before.

    Repeated identical steps (a small model looping) are dropped.
    """
    steps: list[dict[str, Any]] = []
    seen: list[tuple[Any, Any]] = []
    for item in raw.get("steps", []) or []:
        if not isinstance(item, Mapping):
            continue
        key = (item.get("tool"), json.dumps(item.get("args", {}), sort_keys=True, default=str))
        if key in seen:
            continue
        seen.append(key)
        n = len(steps) + 1
        steps.append(
            {
                "id": f"s{n}",
                "tool": item.get("tool"),
                "args": item.get("args", {}),
                "depends_on": [f"s{n - 1}"] if n > 1 else [],
            }
        )
    return {"steps": steps}


def completion_prompt(goal: str, shots: Sequence[Example], context: str = "") -> str:
    """The few-shot prompt: header, worked examples, then the request to continue."""
    parts = [HEAD, ""]
    for request, answer in shots:
        shown = json.dumps(compact(answer), ensure_ascii=False)
        parts += [f"Request: {request}", f"JSON: {shown}", ""]
    request = " ".join(goal.split())
    if context:
        request += " (" + " ".join(context.split())[:600] + ")"
    parts += [f"Request: {request}", "JSON:"]
    return "\n".join(parts)


def grammar_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with local ``$ref``s inlined and keywords a grammar cannot express dropped."""
    defs: Mapping[str, Any] = schema.get("$defs", {})

    def clean(node: Any, depth: int = 0) -> Any:
        if depth > 20:
            return {}
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return clean(defs.get(ref.rsplit("/", 1)[-1], {}), depth + 1)
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "properties" and isinstance(value, Mapping):
                    out[key] = {k: clean(v, depth + 1) for k, v in value.items()}
                elif key in _KEEP and key != "description":
                    out[key] = clean(value, depth + 1)
            return out
        if isinstance(node, list):
            return [clean(v, depth + 1) for v in node]
        return node

    cleaned = clean(schema)
    return cleaned if isinstance(cleaned, dict) else {}


def plan_schema(
    registry: ToolRegistry, max_steps: int = MAX_STEPS, tools: Collection[str] | None = None
) -> dict[str, Any]:
    """JSON Schema of a compact answer: ``{"answer"}`` or ``{"steps": [{"tool", "args"}]}``.

    One alternative per tool (only ``tools`` when given), each with its own argument schema;
    the direct answer only when ``tools`` is None or holds ``ANSWER``.
    """
    alternatives = []
    for tool in registry:
        if tools is not None and tool.name not in tools:
            continue
        args = grammar_schema(tool.schema())
        args.setdefault("type", "object")
        alternatives.append(
            {
                "type": "object",
                "properties": {"tool": {"const": tool.name}, "args": args},
                "required": ["tool", "args"],
            }
        )
    answer = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": MAX_ANSWER_CHARS}},
        "required": ["answer"],
    }
    choices: list[dict[str, Any]] = []
    if tools is None or ANSWER in tools or not alternatives:
        choices.append(answer)
    if alternatives:
        steps = {
            "type": "array",
            "items": {"anyOf": alternatives},
            "minItems": 1,
            "maxItems": max_steps,
        }
        choices.append({"type": "object", "properties": {"steps": steps}, "required": ["steps"]})
    return choices[0] if len(choices) == 1 else {"anyOf": choices}


_TOKEN = re.compile(r"[^\s'\"`()\[\]{},;]+")
_FOLDER = {"folder", "directory", "dir"}
_NOT_PATHS = {"a", "an", "the", "my", "this", "that", "in", "on", "at", "to", "from", "of", "for"}


def request_paths(goal: str) -> list[str]:
    """The paths a request names: words with a folder separator or a file extension, the
    word after "file" (``the file README``) and the word before "folder" or "directory"
    (``the src folder``). URLs and version numbers are not paths. In order, no repeats.
    """
    words = [w.rstrip(".:!?") for w in _TOKEN.findall(goal)]
    found: list[str] = []
    for i, word in enumerate(words):
        lower = word.lower()
        if not word or "://" in word or lower in _NOT_PATHS or re.fullmatch(r"[\d.]+", word):
            continue
        named = "/" in word or re.search(r"\w\.[A-Za-z]\w*$", word) is not None
        before = i + 1 < len(words) and words[i + 1].lower() in _FOLDER
        after = i > 0 and words[i - 1].lower() in ("file", *_FOLDER)
        if (named or before or after) and word not in found and lower not in _FOLDER:
            found.append(word)
    return found


def _changed_paths(plan: Plan, registry: ToolRegistry) -> list[tuple[str, str]]:
    """(step id, path) for every path a step that writes, moves, deletes or runs names."""
    from magray.tools.base import Risk

    found = []
    for step in plan.steps:
        tool = registry.get(step.tool)
        args = tool.parse(step.args)
        if tool.risk_for(args) is Risk.READ:
            continue
        found += [(step.id, path) for path in tool.path_args(args)]
    return found


def _named(path: str, goal: str) -> bool:
    clean = path.strip().strip("/").lower()
    return clean in ("", ".", "./") or any(c in clean for c in "*?[") or clean in goal.lower()


def grounded_paths(plan: Plan, goal: str, registry: ToolRegistry) -> list[str]:
    """The paths of ``plan``'s changing steps that the request does name (no repeats)."""
    return list(dict.fromkeys(p for _, p in _changed_paths(plan, registry) if _named(p, goal)))


def made_up(plan: Plan, goal: str, registry: ToolRegistry) -> list[str]:
    """The paths of ``plan``'s changing steps that the request does not name (no repeats)."""
    return list(dict.fromkeys(p for _, p in _changed_paths(plan, registry) if not _named(p, goal)))


def before_made_up(plan: Plan, goal: str, registry: ToolRegistry) -> Plan | None:
    """The steps of ``plan`` before the first one that changes a path the request does not
    name, when there are any (None otherwise).

    A small model extends a plan with steps of its worked examples ("run the tests" became
    ``shell_exec pytest``, then ``git_add tests`` and ``git_commit``); the steps after a
    made-up path were not asked for, while the ones before it were. A re-plan after the
    critic adds what is still missing.
    """
    made = {step for step, path in _changed_paths(plan, registry) if not _named(path, goal)}
    first = next((i for i, step in enumerate(plan.steps) if step.id in made), None)
    if not first:  # None (nothing made up) or 0 (the first step is wrong: repair it)
        return None
    return Plan(plan.goal, plan.steps[:first])


def ungrounded(plan: Plan, goal: str, registry: ToolRegistry) -> list[str]:
    """Paths a base model made up for a step with side effects: not in the request.

    A small model copies paths from its examples; a write, move or delete of such a path
    could hit the wrong file, so a plan naming one is sampled again, then refused. Reads
    are left alone: a made-up path there fails harmlessly. (``.`` and globs excepted.)
    """
    return [
        f"step {step}: the path {path!r} is not in the request"
        for step, path in _changed_paths(plan, registry)
        if not _named(path, goal)
    ]


_FILE = re.compile(r"\w\.[A-Za-z]\w*$")  # a file name with an extension


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _shown(answer: Mapping[str, Any]) -> set[str]:
    return {
        s.strip().lower()
        for step in answer.get("steps") or ()
        if isinstance(step, Mapping)
        for s in _strings(step.get("args"))
    }


def shows(shot: tuple[str, Mapping[str, Any]], values: Collection[str]) -> bool:
    """Whether a worked example's arguments hold one of ``values``."""
    return bool(_shown(shot[1]) & {v.strip().lower() for v in values})


def copied(
    plan: Plan,
    goal: str,
    shots: Sequence[tuple[str, Mapping[str, Any]]],
    registry: ToolRegistry,
) -> list[str]:
    """Arguments a small model copied from a worked example that the request does not hold.

    ``what do you remember about the API keys?`` once planned ``memory_remember`` with the
    text of an example ("The API key lives in 1Password"), and "read notes.md" was planned
    as ``file_read notes/todo.md``. An argument of four or more characters that equals one
    of the shown examples' arguments and is not in the request is such a copy: any argument
    of a changing step, the file paths of a read (a copied path reads the wrong file; a
    copied ``HEAD~1`` given as a path is left alone: flagging it made the model loop).
    """
    from magray.tools.base import Risk

    text = goal.lower()
    shown = set().union(*(_shown(answer) for _, answer in shots)) if shots else set()
    found: list[str] = []
    for step in plan.steps:
        tool = registry.get(step.tool)
        args = tool.parse(step.args)
        values = None
        if tool.risk_for(args) is Risk.READ:  # file paths only: not a copied ``HEAD~1``
            values = [p for p in tool.path_args(args) if "/" in p or _FILE.search(p)]
        for value in _strings(dict(step.args)) if values is None else values:
            clean = value.strip().lower()
            if len(clean) >= 4 and clean in shown and clean not in text and value not in found:
                found.append(value)
    return found
