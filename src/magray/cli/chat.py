"""`magray chat`: a conversation grounded in memory that can act, with slash commands.

Each message is one agent turn (``magray.agent.turn``): recall, then the model answers or
plans tool steps. A plan with side effects is shown and asked about inline — ``y``, ``n``
or ``always`` (its tools for the rest of the chat) — and runs under the policy; ``/mode``
switches between ask-first, auto-edit and read-only. Providers without a chat template
(base models) only answer.

On a terminal it is a prompt_toolkit REPL (history, Alt-Enter for a new line, streaming);
with piped input it reads one message per line — approvals included — so it can be
scripted and tested.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from magray.cli.ask import check_k, make_session, recall_scope, show_result, streamer
from magray.cli.context import nonblank

if TYPE_CHECKING:
    from magray.agent.approvals import Approvals, Choice
    from magray.agent.executor import StepResult
    from magray.agent.plan import Plan
    from magray.agent.runner import Agent
    from magray.agent.session import Session
    from magray.runtime import Runtime
    from magray.tools.policy import Policy

#: reads the user's answer to a question; None when the input has ended
Read = Callable[[str], "str | None"]

HELP = """Slash commands:
  /help               this help
  /remember TEXT      keep TEXT in Insights (/remember! TEXT: Assets, pinned)
  /forget ID          forget a memory
  /search QUERY       search memory
  /provider [NAME]    show or switch the provider
  /model [NAME]       show or switch the model
  /mode [MODE]        show or switch: ask-first, auto-edit, read-only
  /clear              start a new conversation
  /exit               leave (Ctrl-D works too)"""


class InlineAsker:
    """Asks about plans and steps in the chat itself (y / n / always)."""

    def __init__(self, read: Read, say: Callable[[str], None]) -> None:
        self.read = read
        self.say = say

    def approve(self, plan: Plan, tools: frozenset[str]) -> Choice:
        from magray.agent.approvals import Choice

        answer = (self.read(f"Run it? [y/n/always: {', '.join(sorted(tools))}] ") or "").strip()
        if answer.lower() in {"y", "yes"}:
            return Choice.YES
        if answer.lower() in {"a", "always"}:
            return Choice.ALWAYS
        return Choice.NO

    def confirm(self, tool: str, preview: str) -> bool:
        self.say(f"{tool} wants to do:\n{preview}")
        return (self.read("Allow it? [y/n] ") or "").strip().lower() in {"y", "yes"}


class Chat:
    """The state of one chat: provider, model, conversation, mode; slash commands."""

    def __init__(
        self,
        session: Session,
        provider: str | None,
        model: str | None,
        *,
        runtime: Runtime | None = None,
        read: Read | None = None,
        roots: Sequence[Path] = (),
        tools: bool = True,
    ) -> None:
        from magray.agent.approvals import Mode

        self.session = session
        self.provider = provider
        self.model = model
        self.conversation: str | None = None
        self.runtime = runtime
        self.read: Read = read or (lambda question: None)
        self.roots = tuple(roots)
        self.tools = tools
        self.mode = Mode.ASK_FIRST
        #: the exit code of the first error of this chat (0: none); a piped chat ends with it
        self.failed = 0
        self._agent: Agent | None = None
        self._approvals: Approvals | None = None

    def check_model(self, model: str | None) -> None:
        """Refuse a model the provider cannot run, before anything loads."""
        if model is not None and self.runtime is not None:
            router = self.runtime.router
            router.check_model(router.config.chain(self.provider)[0], model)

    def can_act(self) -> bool:
        """Tools need a provider that can plan (a chat template) and the runtime."""
        from magray.llm.base import capabilities_of

        if not self.tools or self.runtime is None:
            return False
        return capabilities_of(self.session.llm.provider(self.provider)).chat_template

    def agent(self) -> Agent:
        """The agent of this chat, built on first use (tools, policy, approvals)."""
        if self._agent is None:
            self._agent = self._build_agent()
        self._agent.planner.provider = self.provider
        self._agent.critic.provider = self.provider
        return self._agent

    def _build_agent(self) -> Agent:
        from magray.agent.approvals import Approvals
        from magray.agent.assemble import AgentOptions

        rt = self.runtime
        assert rt is not None  # can_act() checked it
        registry = rt.tool_registry()
        say = self._say
        approvals = Approvals(InlineAsker(self.read, say), registry, mode=self.mode)
        self._approvals = approvals
        ctx = rt.tool_context(self.roots)

        def approve(plan: Plan) -> bool:
            from magray.agent.plan import describe
            from magray.agent.preview import plan_previews, render_previews

            say(f"Plan:\n{describe(plan)}")
            previews = plan_previews(plan, registry, ctx)
            if previews:
                say(f"What it will change:\n{render_previews(previews)}")
            return approvals.approve(plan)

        options = AgentOptions(
            approve=approve,
            confirm=approvals.confirm,
            memory=self.session.memory,
            provider=self.provider,
            max_steps=None,
            on_results=self._show_steps,
        )
        return rt.agent(registry, ctx, self._policy(), options)

    def _policy(self) -> Policy:
        from magray.agent.approvals import Mode as ChatMode
        from magray.tools.policy import Mode

        assert self.runtime is not None
        return self.runtime.policy(Mode(read_only=self.mode is ChatMode.READ_ONLY))

    def set_mode(self, name: str) -> None:
        from magray.agent.approvals import Mode
        from magray.errors import UsageError

        try:
            self.mode = Mode(name)
        except ValueError:
            modes = ", ".join(m.value for m in Mode)
            raise UsageError(f"unknown mode {name!r}; use one of {modes}.") from None
        if self._agent is not None and self._approvals is not None:
            self._approvals.mode = self.mode
            self._agent.executor.policy = self._policy()

    @staticmethod
    def _say(text: str) -> None:
        typer.echo(text)

    def _show_steps(self, results: Sequence[StepResult]) -> None:
        for step in results:
            line = f"{step.id} {step.tool}: {step.status}"
            if step.error:
                line += f" — {step.error}"
            self._say(line)

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
                    self.check_model(arg)
                    self.model = arg
                say(f"model: {self.model or self.session.llm.provider(self.provider).model}")
            elif name == "mode":
                if arg:
                    self.set_mode(arg)
                say(f"mode: {self.mode.value}")
            elif name == "clear":
                self.conversation = None
                say("new conversation")
            else:
                say(f"unknown command /{name}; /help lists them")
        except MagrayError as exc:
            from magray.cli.app import error_line

            error_line(exc.message)
            self.failed = self.failed or exc.exit_code
        return True

    def turn(self, text: str) -> None:
        from magray.agent.turn import AgentTurn
        from magray.cli.render import StatusLine
        from magray.errors import MagrayError
        from magray.llm.status import reporting

        try:
            act = self.can_act()
            turn = AgentTurn(self.session, self.agent() if act else None)
            with reporting(StatusLine()):  # a slow local model says what it is doing
                result = turn.take(
                    text,
                    act=act,
                    provider=self.provider,
                    model=self.model,
                    conversation_id=self.conversation,
                    on_text=streamer(),
                )
        except MagrayError as exc:
            from magray.cli.app import error_line

            error_line(exc.message)
            self.failed = self.failed or exc.exit_code
            return
        except KeyboardInterrupt:
            typer.echo("\n(interrupted)", err=True)
            return
        self.conversation = result.conversation_id
        if result.ask is not None:
            show_result(self.session, result.ask)
        else:
            typer.echo("")


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


def _piped_lines() -> Iterator[str]:
    """Standard input's lines; one that is not UTF-8 stops the chat with a usage error."""
    from magray.errors import UsageError

    for number, raw in enumerate(sys.stdin.buffer, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(
                f"line {number} of standard input is not UTF-8 text; convert it first (for"
                " example with `iconv -t UTF-8`)."
            ) from None
        yield text.rstrip("\r\n")


def chat(
    provider: str | None = typer.Option(None, "--provider", help="Provider name (llm list)."),
    model: str | None = typer.Option(None, "--model", help="Model of that provider."),
    no_memory: bool = typer.Option(False, "--no-memory", help="Neither recall nor remember."),
    root: list[Path] = typer.Option(
        [],
        "--root",
        help="Workspace root of the tools (repeatable; default: tools.roots, else the current "
        "folder).",
    ),
    mode: str = typer.Option(
        "ask-first", "--mode", help="ask-first, auto-edit or read-only (/mode switches)."
    ),
    no_tools: bool = typer.Option(False, "--no-tools", help="Only answer; never plan or act."),
    cont: bool = typer.Option(False, "-c", "--continue", help="Resume the last conversation."),
    project: str | None = typer.Option(
        None, "--project", help="Recall only this project.", callback=nonblank
    ),
    layer: list[str] = typer.Option([], "--layer", help="Recall only this layer (repeatable)."),
    tag: list[str] = typer.Option([], "--tag", help="Recall only records with this tag."),
    k: int | None = typer.Option(None, "-k", help="How many memories to recall (1–100)."),
) -> None:
    """Chat with MAGRAY: answers stream, grounded in memory, and it can act; /help for commands.

    Example: magray chat --provider openai
    """
    from magray.cli.context import runtime

    rt = runtime()  # closed when the command ends
    settings = rt.settings
    rt.workspace_roots(root)  # a bad --root fails before the chat starts
    session = make_session(
        rt,
        use_memory=not no_memory,
        scope=recall_scope(project, layer, tag),
        k=check_k(k),
    )
    interactive = sys.stdin.isatty()
    if interactive:
        settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
        lines = _terminal_lines(str(settings.paths.data_dir / "chat_history"))
        typer.echo("MAGRAY chat — /help for commands, Ctrl-D to leave.", err=True)

        def read(question: str) -> str | None:
            return str(typer.prompt(question, default="n", err=True))
    else:
        lines = _piped_lines()

        def read(question: str) -> str | None:
            typer.echo(question)
            answer = next(lines, None)
            if answer is not None:
                typer.echo(answer)
            return answer

    state = Chat(session, provider, model, runtime=rt, read=read, roots=root, tools=not no_tools)
    state.set_mode(mode)
    state.check_model(model)  # fail fast on a model the provider cannot run
    state.session.llm.provider(provider)  # fail fast on an unknown provider
    if cont:  # no earlier conversation: NotFoundError, exit 3, before the chat starts
        state.conversation = session.log.last_conversation()
        typer.echo(f"resuming conversation {state.conversation}", err=True)
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            if not state.command(text, lambda msg: typer.echo(msg)):
                break
            continue
        state.turn(text)
    if not interactive and state.failed:  # a script learns that a turn failed
        raise typer.Exit(state.failed)
