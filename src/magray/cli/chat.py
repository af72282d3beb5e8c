"""`magray chat`: an interactive conversation grounded in memory, with slash commands.

On a terminal it is a prompt_toolkit REPL (history, Alt-Enter for a new line, streaming);
with piped input it reads one message per line, so it can be scripted and tested.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import typer

from magray.cli.ask import make_session, show_result, streamer

if TYPE_CHECKING:
    from magray.agent.session import Session

HELP = """Slash commands:
  /help               this help
  /remember TEXT      keep TEXT in Insights (/remember! TEXT: Assets, pinned)
  /forget ID          forget a memory
  /search QUERY       search memory
  /provider [NAME]    show or switch the provider
  /model [NAME]       show or switch the model
  /clear              start a new conversation
  /exit               leave (Ctrl-D works too)"""


class Chat:
    """The state of one chat: provider, model, conversation; slash commands."""

    def __init__(self, session: Session, provider: str | None, model: str | None) -> None:
        self.session = session
        self.provider = provider
        self.model = model
        self.conversation: str | None = None

    def command(self, line: str, say: Callable[[str], None]) -> bool:
        """Run a slash command; False when the chat should end."""
        from magray.errors import MagrayError
        from magray.memory.records import Layer, NewRecord, Query

        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        memory = self.session.memory
        try:
            if name in {"exit", "quit"}:
                return False
            if name == "help":
                say(HELP)
            elif name in {"remember", "remember!"}:
                if memory is None or not arg:
                    say("usage: /remember TEXT (memory must be on)")
                else:
                    keep = name == "remember!"
                    kept = memory.remember(
                        NewRecord(
                            text=arg,
                            layer=Layer.ASSETS if keep else Layer.INSIGHTS,
                            kind="note",
                            pinned=keep,
                            session=self.conversation,
                        )
                    )
                    where = "assets (pinned)" if keep else "insights"
                    say(f"remembered {getattr(kept, 'id', '')} in {where}")
            elif name == "forget":
                forget = getattr(memory, "forget", None)
                if forget is None or not arg:
                    say("usage: /forget ID")
                else:
                    say(f"forgot {forget(arg).id}")
            elif name == "search":
                if memory is None or not arg:
                    say("usage: /search QUERY (memory must be on)")
                else:
                    for i, hit in enumerate(memory.recall(Query(text=arg, k=5)), 1):
                        text = " ".join(hit.record.text.split())[:120]
                        say(f"{i}. {hit.record.id} [{hit.record.layer}] {text}")
            elif name == "provider":
                if arg:
                    self.session.llm.provider(arg)  # validates the name
                    self.provider = arg
                say(f"provider: {self.session.llm.provider(self.provider).name}")
            elif name == "model":
                if arg:
                    self.model = arg
                say(f"model: {self.model or self.session.llm.provider(self.provider).model}")
            elif name == "clear":
                self.conversation = None
                say("new conversation")
            else:
                say(f"unknown command /{name}; /help lists them")
        except MagrayError as exc:
            from magray.cli.app import error_line

            error_line(exc.message)
        return True

    def turn(self, text: str) -> None:
        from magray.errors import MagrayError

        try:
            result = self.session.ask(
                text,
                provider=self.provider,
                model=self.model,
                conversation_id=self.conversation,
                on_text=streamer(),
            )
        except MagrayError as exc:
            from magray.cli.app import error_line

            error_line(exc.message)
            return
        self.conversation = result.conversation_id
        show_result(self.session, result)


def _terminal_lines(history_file: str) -> Iterator[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: object) -> None:
        event.current_buffer.insert_text("\n")  # type: ignore[attr-defined]

    prompt: PromptSession[str] = PromptSession(
        history=FileHistory(history_file), key_bindings=bindings
    )
    while True:
        try:
            yield prompt.prompt("you> ")
        except KeyboardInterrupt:
            continue  # Ctrl-C clears the line; Ctrl-D leaves
        except EOFError:
            return


def chat(
    provider: str | None = typer.Option(None, "--provider", help="Provider name (llm list)."),
    model: str | None = typer.Option(None, "--model", help="Model of that provider."),
    no_memory: bool = typer.Option(False, "--no-memory", help="Neither recall nor remember."),
) -> None:
    """Chat with MAGRAY: answers stream, grounded in memory; /help for commands.

    Example: magray chat --provider openai
    """
    from magray.cli.context import settings as load

    settings = load()
    session = make_session(settings, use_memory=not no_memory)
    state = Chat(session, provider, model)
    state.session.llm.provider(provider)  # fail fast on an unknown provider
    interactive = sys.stdin.isatty()
    if interactive:
        settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
        lines = _terminal_lines(str(settings.paths.data_dir / "chat_history"))
        typer.echo("MAGRAY chat — /help for commands, Ctrl-D to leave.", err=True)
    else:
        lines = (line.rstrip("\n") for line in sys.stdin)
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            if not state.command(text, lambda msg: typer.echo(msg)):
                break
            continue
        state.turn(text)
