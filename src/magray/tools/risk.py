"""What running a tool can do to the world (kept apart from the tool base, so the policy
and the settings files can name it without importing the argument schemas)."""

from __future__ import annotations

from enum import StrEnum


class Risk(StrEnum):
    """What running a tool can do to the world."""

    READ = "read"
    WRITE = "write"
    EXEC = "exec"
    NETWORK = "network"
