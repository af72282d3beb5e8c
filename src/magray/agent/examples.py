"""Worked examples of requests and their plans, for few-shot planning with small local models.

The planner puts the examples most similar to a request (by embedding) in front of it, so
a small base model sees how *this kind* of request maps to tools. Each example is a
request and the JSON the model should answer: ``{"steps": [...]}`` or ``{"answer": ...}``.
The requests of ``magray bench agent`` are kept out of this list.
"""

from __future__ import annotations

from typing import Any


def _plan(*steps: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A plan whose steps run one after another (s1, s2, ...)."""
    out = []
    for i, (tool, args) in enumerate(steps, 1):
        deps = [f"s{i - 1}"] if i > 1 else []
        out.append({"id": f"s{i}", "tool": tool, "args": args, "depends_on": deps})
    return {"steps": out}


def _answer(text: str) -> dict[str, Any]:
    return {"answer": text}


EXAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    # files: read
    ("open docs/intro.md", _plan(("file_read", {"path": "docs/intro.md"}))),
    (
        "print lines 10 to 30 of app/main.py",
        _plan(("file_read", {"path": "app/main.py", "start_line": 10, "end_line": 30})),
    ),
    ("what does the Makefile say?", _plan(("file_read", {"path": "Makefile"}))),
    ("which files are in the tests directory?", _plan(("file_list", {"path": "tests"}))),
    ("list everything in this folder", _plan(("file_list", {"path": "."}))),
    (
        "show the folder tree of lib recursively",
        _plan(("file_list", {"path": "lib", "recursive": True})),
    ),
    ("list all .py files", _plan(("file_glob", {"pattern": "**/*.py"}))),
    ("which yaml files are under config?", _plan(("file_glob", {"pattern": "config/**/*.yaml"}))),
    ("where is the function parse_args used?", _plan(("file_grep", {"pattern": "parse_args"}))),
    ("search the code for FIXME", _plan(("file_grep", {"pattern": "FIXME"}))),
    (
        "grep for 'import requests' in the src folder",
        _plan(("file_grep", {"pattern": "import requests", "path": "src"})),
    ),
    # files: change
    (
        "write 'done' into status.txt",
        _plan(("file_write", {"path": "status.txt", "content": "done\n"})),
    ),
    (
        "make a new file notes/todo.md with a heading Todo",
        _plan(("file_write", {"path": "notes/todo.md", "content": "# Todo\n"})),
    ),
    (
        "in config.ini change debug=true to debug=false",
        _plan(
            ("file_edit", {"path": "config.ini", "search": "debug=true", "replace": "debug=false"})
        ),
    ),
    (
        "fix the typo 'recieve' in docs/api.md",
        _plan(("file_edit", {"path": "docs/api.md", "search": "recieve", "replace": "receive"})),
    ),
    (
        "move a.txt into the archive folder",
        _plan(("file_move", {"src": "a.txt", "dst": "archive/a.txt"})),
    ),
    ("rename main.js to index.js", _plan(("file_move", {"src": "main.js", "dst": "index.js"}))),
    ("remove old.csv", _plan(("file_delete", {"path": "old.csv"}))),
    ("get rid of the temporary file out.tmp", _plan(("file_delete", {"path": "out.tmp"}))),
    # git
    ("show the git status", _plan(("git_status", {}))),
    ("are there uncommitted files?", _plan(("git_status", {}))),
    ("which files have I modified?", _plan(("git_status", {}))),
    ("show what I changed in main.py", _plan(("git_diff", {"paths": ["main.py"]}))),
    ("show the staged diff", _plan(("git_diff", {"staged": True}))),
    ("show the commit history", _plan(("git_log", {}))),
    ("list the 3 most recent commits", _plan(("git_log", {"max_count": 3}))),
    ("show the contents of commit HEAD~1", _plan(("git_show", {"rev": "HEAD~1"}))),
    ("what did commit a1b2c3d change?", _plan(("git_show", {"rev": "a1b2c3d"}))),
    ("start a branch named fix-io", _plan(("git_branch", {"name": "fix-io"}))),
    ("list the branches", _plan(("git_branch", {}))),
    ("go back to the develop branch", _plan(("git_checkout", {"ref": "develop"}))),
    (
        "check out a new branch called docs-update",
        _plan(("git_checkout", {"ref": "docs-update", "create": True})),
    ),
    ("stage setup.cfg", _plan(("git_add", {"paths": ["setup.cfg"]}))),
    ("commit with the message 'Bump version'", _plan(("git_commit", {"message": "Bump version"}))),
    (
        "stage src/a.py and commit it as 'WIP'",
        _plan(("git_add", {"paths": ["src/a.py"]}), ("git_commit", {"message": "WIP"})),
    ),
    (
        "replace foo with bar in a.txt and commit",
        _plan(
            ("file_edit", {"path": "a.txt", "search": "foo", "replace": "bar"}),
            ("git_add", {"paths": ["a.txt"]}),
            ("git_commit", {"message": "Use bar"}),
        ),
    ),
    # shell
    ("run make lint", _plan(("shell_exec", {"argv": ["make", "lint"]}))),
    ("build the project with cargo", _plan(("shell_exec", {"argv": ["cargo", "build"]}))),
    ("check free memory with free -m", _plan(("shell_exec", {"argv": ["free", "-m"]}))),
    ("execute npm test", _plan(("shell_exec", {"argv": ["npm", "test"]}))),
    (
        "which python version is installed? run python --version",
        _plan(("shell_exec", {"argv": ["python", "--version"]})),
    ),
    (
        "count the lines of main.c with wc -l",
        _plan(("shell_exec", {"argv": ["wc", "-l", "main.c"]})),
    ),
    # web
    ("download the page https://python.org", _plan(("web_fetch", {"url": "https://python.org"}))),
    (
        "read https://docs.rs/serde and tell me what it is",
        _plan(("web_fetch", {"url": "https://docs.rs/serde"})),
    ),
    (
        "look up the latest numpy release online",
        _plan(("web_search", {"query": "latest numpy release"})),
    ),
    (
        "google how to undo a git rebase",
        _plan(("web_search", {"query": "how to undo a git rebase"})),
    ),
    # memory
    ("keep in mind that I prefer tabs", _plan(("memory_remember", {"text": "I prefer tabs"}))),
    (
        "note for later: the API key lives in 1Password",
        _plan(("memory_remember", {"text": "The API key lives in 1Password"})),
    ),
    (
        "what do you know about my editor settings?",
        _plan(("memory_recall", {"query": "editor settings"})),
    ),
    ("recall what we decided about the logo", _plan(("memory_recall", {"query": "logo decision"}))),
    (
        "did I save anything about the VPN settings?",
        _plan(("memory_recall", {"query": "VPN settings"})),
    ),
    ("delete memory 01ab", _plan(("memory_forget", {"id": "01ab"}))),
    ("forget the memory with id 7f3e", _plan(("memory_forget", {"id": "7f3e"}))),
    # tasks
    ("todo: update the docs", _plan(("task_add", {"title": "Update the docs"}))),
    ("create a task to fix the login bug", _plan(("task_add", {"title": "Fix the login bug"}))),
    ("list the tasks", _plan(("task_list", {}))),
    ("what is left to do?", _plan(("task_list", {"state": "todo"}))),
    ("task 3 is finished", _plan(("task_update", {"id": "3", "state": "done"}))),
    ("set task 12 to in progress", _plan(("task_update", {"id": "12", "state": "doing"}))),
    # direct answers
    ("what is 2 + 2?", _answer("4")),
    ("who wrote Hamlet?", _answer("William Shakespeare.")),
    ("what does HTTP stand for?", _answer("HyperText Transfer Protocol.")),
    ("say hello", _answer("Hello!")),
    ("who painted the Mona Lisa?", _answer("Leonardo da Vinci.")),
    ("what is the square root of 144?", _answer("12.")),
    ("what is the largest ocean on Earth?", _answer("The Pacific Ocean.")),
    ("how do you say thank you in German?", _answer("Danke.")),
    (
        "explain what a prime number is in one sentence",
        _answer(
            "A prime number is a whole number greater than 1 whose only divisors are 1 and itself."
        ),
    ),
)
