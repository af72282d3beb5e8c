"""MAGRAY: a local-first AI agent for the terminal with a three-layer semantic memory."""

__version__ = "0.1.0"
