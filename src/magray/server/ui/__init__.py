"""The web dashboard at ``/ui``: server-rendered pages over MAGRAY's own HTTP API."""
