"""The error tree of MAGRAY.

Every error the core raises on purpose is a ``MagrayError`` whose message is one
sentence a user can act on. The CLI prints it on one line and exits with
``exit_code``; nothing below is ever shown as a traceback.

```
MagrayError                      exit 1 unless noted
├── UsageError                   exit 2  bad arguments or input values
├── ConfigError                  exit 1  invalid config.toml / environment value
├── NotFoundError                exit 3  no such record, model, file, backup
├── StoreError                   exit 1  the SQLite store cannot be used
│   ├── StoreLockedError         exit 1  another process holds the writer lock
│   ├── SchemaError              exit 1  store written by a newer MAGRAY
│   └── BackupError              exit 1  damaged or incompatible backup / import
├── IndexCorruptError            exit 1  a derived index cannot be repaired in place
├── ModelError                   exit 1  embedding model missing, corrupt, incompatible
│   ├── ModelNotInstalledError   exit 1  model files absent: names the install command
│   └── DimensionMismatchError   exit 1  store vectors vs active model differ
├── NetworkError                 exit 5  a download or remote call failed
├── ProviderError                exit 5  an LLM provider failed
│   ├── ProviderUnavailableError exit 5  timeout, connection refused, 5xx (retryable;
│   │                                    carries retry_after when a 503 sent one)
│   ├── RateLimitError           exit 5  429; carries retry_after seconds (retryable)
│   ├── ProviderResponseError    exit 5  malformed or refused response (not retryable)
│   ├── MissingKeyError          exit 1  no API key: names the env var and `magray keys set`
│   ├── UnknownProviderError     exit 2  no such provider/model: lists what exists
│   └── BudgetExceededError      exit 1  the daily token/cost budget is spent
├── CycleError                   exit 1  a task dependency would close a cycle; carries cycle
├── HasDependentsError           exit 1  a task others depend on is removed without --force
├── ToolError                    exit 1  a tool failed (bad target, not a git repository, …);
│                                        transient=True: worth one more try (connection
│                                        refused, timeout, HTTP 429/502/503/504, lock held)
├── PolicyError                  exit 1  an invalid policy rule or policy.toml
├── DeniedError                  exit 4  refused by policy
└── PlanError                    exit 6  the model gave no usable plan: still invalid after
                                         the repairs, or an empty answer twice
```

A message is written once, in parts: plain text and :class:`Words`, the words each
surface says its own way (a listing to look at, an option that does what is asked).
``str(exc)`` and ``exc.message`` are the CLI's sentence; ``exc.message_for("api")`` is the
HTTP API's, naming the request, query parameter or field instead of a command or option::

    raise NotFoundError(f"no memory with id {id!r}", see(Listing.MEMORIES))
    # cli: no memory with id 'x'; see `magray memory list`.
    # api: no memory with id 'x'; GET /v1/memories lists the memories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, TypeAlias

#: where a message is shown: the command line or the HTTP API
Surface: TypeAlias = Literal["cli", "api"]


@dataclass(frozen=True, slots=True)
class Words:
    """Words of a message that each surface says its own way."""

    cli: str
    api: str

    def on(self, surface: Surface) -> str:
        """The words ``surface`` shows."""
        return self.cli if surface == "cli" else self.api


#: a message: plain text and surface words, read in order
Part: TypeAlias = str | Words


class Listing(Enum):
    """What a message can point to for the names that exist: its command and its request."""

    MEMORIES = ("memories", "magray memory list", "GET /v1/memories")
    TASKS = ("tasks", "magray tasks list", "GET /v1/tasks")
    KEYS = ("keys", "magray auth list-keys", "GET /v1/keys")
    PROVIDERS = ("providers", "magray llm list", "GET /v1/providers")
    MODELS = ("models", "magray models list", "GET /v1/models")

    def __init__(self, noun: str, command: str, request: str) -> None:
        self.noun = noun
        self.command = command
        self.request = request

    @property
    def named(self) -> Words:
        """The listing inside a sentence (``give one of `magray llm list```)."""
        return Words(f"`{self.command}`", self.request)


def see(where: Listing | str, *, aside: bool = False) -> Words:
    """A message's closing pointer (``; see `magray memory list`.``, or `` (see …).`` when
    ``aside``): the API names the request that lists the same, and drops a pointer to a
    command (``where`` as a string) it has no request for."""
    command = where.command if isinstance(where, Listing) else where
    cli = f" (see `{command}`)." if aside else f"; see `{command}`."
    api = f"; {where.request} lists the {where.noun}." if isinstance(where, Listing) else "."
    return Words(cli, api)


#: the options a message tells to use, and what an API client sends instead
FORCE = Words("--force", "?force=true")
NOTE = Words("--note", '"notes"')
MEMORY = Words("--memory", '"memory"')
PROVIDER = Words("--provider", '"provider"')


def server_setting(cli: str, change: str) -> Words:
    """A remedy the command line gives with an option (``cli``: ``pass --root DIR``) and a
    server takes from its own settings: an API client asks the server's operator to
    ``change`` it (``add DIR to tools.roots``)."""
    return Words(cli, f"ask the server's operator to {change}")


def provider_option(name: str) -> Words:
    """The option that asks a named provider (``--provider NAME``)."""
    return Words(f"{PROVIDER.cli} {name}", f'{PROVIDER.api}: "{name}"')


class MagrayError(Exception):
    """Root of every error MAGRAY raises on purpose; ``parts`` is the message as written."""

    exit_code: int = 1

    def __init__(self, *parts: Part) -> None:
        self.parts = parts
        self.message = self.message_for("cli")
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def message_for(self, surface: Surface) -> str:
        """The message in the words of ``surface``."""
        return "".join(p if isinstance(p, str) else p.on(surface) for p in self.parts)

    def clause(self) -> tuple[Part, ...]:
        """``parts`` without the closing full stop, to quote inside another message."""
        *head, last = self.parts or ("",)
        if isinstance(last, str):
            return (*head, last.rstrip("."))
        return (*head, Words(last.cli.rstrip("."), last.api.rstrip(".")))


class UsageError(MagrayError):
    """Arguments or input values are invalid."""

    exit_code = 2


class ConfigError(MagrayError):
    """A configuration value is invalid."""


class NotFoundError(MagrayError):
    """A record, model, file or backup does not exist."""

    exit_code = 3


class StoreError(MagrayError):
    """The memory store cannot be used."""


class StoreFullError(StoreError):
    """The disk holding the store is full (or failing): nothing was written."""


class StoreLockedError(StoreError):
    """Another process is writing to the store."""


class SchemaError(StoreError):
    """The store's schema is newer than this MAGRAY understands."""


class BackupError(StoreError):
    """A backup, restore, export or import cannot proceed safely."""


class IndexCorruptError(MagrayError):
    """A derived index is damaged and could not be repaired in place."""


class ModelError(MagrayError):
    """An embedding or reranking model cannot be used."""


class ModelNotInstalledError(ModelError):
    """The model's files are not installed."""


class DimensionMismatchError(ModelError):
    """The store holds vectors of a different model or dimension."""


class NetworkError(MagrayError):
    """A network operation failed or the network is unavailable."""

    exit_code = 5


class ProviderError(MagrayError):
    """An LLM provider failed."""

    exit_code = 5
    retryable: bool = False

    def __init__(self, *parts: Part, retry_after: float | None = None) -> None:
        super().__init__(*parts)
        #: the server's ``Retry-After`` hint in seconds (429 and 503 send one), if any
        self.retry_after = retry_after


class ProviderUnavailableError(ProviderError):
    """Timeout, refused connection or server error: worth retrying or falling back."""

    retryable = True


class RateLimitError(ProviderError):
    """The provider said 429; ``retry_after`` is its hint in seconds (if any)."""

    retryable = True


class ProviderResponseError(ProviderError):
    """The provider answered something unusable (malformed, refused, bad request)."""


class MissingKeyError(ProviderError):
    """No API key is configured for a provider that needs one."""

    exit_code = 1


class UnknownProviderError(ProviderError):
    """No provider or model of that name."""

    exit_code = 2


class BudgetExceededError(ProviderError):
    """The daily token or cost budget is spent."""

    exit_code = 1


class ConflictError(MagrayError):
    """The request does not fit the current state of what it names (a run not waiting)."""


class CycleError(MagrayError):
    """A dependency would close a cycle; ``cycle`` lists the ids, first == last."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        path = " → ".join(self.cycle)
        super().__init__(f"that dependency would create a cycle: {path}; nothing was changed.")


class HasDependentsError(MagrayError):
    """A task others depend on cannot be removed without ``--force``."""

    def __init__(self, task_id: str, dependents: Sequence[str]) -> None:
        self.dependents = tuple(dependents)
        names = ", ".join(self.dependents)
        super().__init__(
            f"task {task_id} is a dependency of {names}; use ",
            FORCE,
            " to remove it and those links.",
        )


class ToolError(MagrayError):
    """A tool could not do what it was asked (the message says why and what to do).

    ``transient`` marks a failure that may pass on its own (a refused or dropped
    connection, a timeout, HTTP 429/502/503/504, a lock another process holds); the
    agent's executor tries such a step once more.
    """

    def __init__(self, *parts: Part, transient: bool = False) -> None:
        super().__init__(*parts)
        self.transient = transient


class PolicyError(MagrayError):
    """A permission-policy rule or the policy file is invalid."""


class DeniedError(MagrayError):
    """An action was refused by the permission policy."""

    exit_code = 4


class PlanError(MagrayError):
    """The model gave no usable plan: invalid after every repair, or nothing at all."""

    exit_code = 6
