"""Observability: the hash-chained audit log, Prometheus metrics, JSON logs, health checks.

Nothing here imports a web framework; the server and the CLI both build on these modules.
"""
