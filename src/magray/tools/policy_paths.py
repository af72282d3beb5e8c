"""Path globs in policy rules, and the filter that walking tools ask about paths.

A glob is matched against a path relative to its root: ``**`` crosses folders, ``*`` and
``?`` stay within one, and a glob covers what it matches and everything under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from magray.tools.policy import Policy


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A path glob: ``**`` crosses folders, ``*`` and ``?`` stay within one."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def path_matches(pattern: str, rel: str) -> bool:
    """True when the path glob ``pattern`` covers ``rel`` (a path relative to its root).

    A pattern covers what it matches and everything under it: ``secrets/**`` and
    ``secrets`` both cover ``secrets`` and ``secrets/a/key.txt``.
    """
    glob = pattern.strip("/") or "**"
    if glob.endswith("/**"):
        glob = glob[:-3]
    regex = glob_to_regex(glob)
    parts = PurePosixPath(rel).parts
    if rel in ("", "."):
        return bool(regex.match("."))
    return any(regex.match("/".join(parts[: i + 1])) for i in range(len(parts)))


@dataclass(frozen=True, slots=True)
class PathFilter:
    """What one tool may not see: the paths a walk (grep, glob, list, git) must skip."""

    policy: Policy
    tool: str

    def hides(self, rel: str) -> bool:
        """True when a call of the tool on ``rel`` would be denied (or asked, without --yes)."""
        action = self.policy.path_action(self.tool, rel)
        return action == "deny" or (action == "ask" and not self.policy.mode.yes)

    def patterns(self) -> tuple[str, ...]:
        """The path globs denied to the tool (each covers a folder and all under it)."""
        return tuple(self.policy.denied_paths(self.tool))
