"""`magray serve --workers N`: N uvicorn processes, each accepting on its own socket.

uvicorn's own ``--workers`` binds one socket in the parent and lets every worker accept
from it. Its event loop accepts every waiting connection at once, so a burst of keep-alive
clients lands on whichever worker woke first: 100 connections opened together went 99 to
one worker and 1 to the other, and that one worker (one core) answered nearly all the
traffic while the second idled. Here each worker binds its own listening socket to the
same address with ``SO_REUSEPORT``, and the kernel spreads new connections over them by a
hash of each connection's addresses (Linux, the BSDs, macOS); where the option does not
exist this falls back to uvicorn's shared socket.

The parent only supervises: it starts the workers, restarts one that dies while serving,
and on SIGINT or SIGTERM asks each to stop (uvicorn's graceful shutdown: stop accepting,
finish what is in flight) and waits for them. A worker that fails before it serves (a bad
app, a port taken since the check) stops them all, with its exit code. A worker whose
supervisor is gone (killed with SIGKILL) stops by itself, gracefully, within a second or
two, instead of serving on as an orphan.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("magray.server")

#: a worker that exits this soon after starting, without serving, is not restarted
STARTUP_FAILURE = 3
LISTEN_BACKLOG = 2048


def can_reuse_port() -> bool:
    """Whether this platform lets several sockets listen on one port (``SO_REUSEPORT``)."""
    return hasattr(socket, "SO_REUSEPORT") and os.name != "nt"


def listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening TCP socket on ``host:port``; with ``reuse_port`` others may share it."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _worker(options: dict[str, Any], host: str, port: int) -> None:  # pragma: no cover
    """One worker process: its own socket, then uvicorn until it is asked to stop."""
    import uvicorn

    try:
        sock = listen(host, port, reuse_port=True)
    except OSError as exc:
        log.error("worker %s cannot listen on %s:%s: %s", os.getpid(), host, port, exc)
        raise SystemExit(STARTUP_FAILURE) from None
    server = uvicorn.Server(uvicorn.Config(**options))
    parent = os.getppid()

    def orphaned() -> None:  # the supervisor was killed: stop too, gracefully
        while not server.should_exit:
            time.sleep(1.0)
            if os.getppid() != parent:
                log.warning("worker %s: the supervising process is gone; stopping", os.getpid())
                server.should_exit = True

    threading.Thread(target=orphaned, daemon=True, name="magray-orphan-watch").start()
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


class Supervisor:
    """Starts ``count`` workers and keeps them running until a signal or a startup failure."""

    def __init__(self, options: dict[str, Any], host: str, port: int, count: int) -> None:
        self.options, self.host, self.port, self.count = options, host, port, count
        self.context = multiprocessing.get_context("spawn")  # no threads or locks inherited
        self.workers: list[BaseProcess] = []
        self.stopping = threading.Event()
        self.exit_code = 0

    def start_one(self) -> BaseProcess:
        process = self.context.Process(
            target=_worker, args=(self.options, self.host, self.port), name="magray-worker"
        )
        process.start()
        return process

    def stop(self, *_: Any) -> None:
        self.stopping.set()

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (0) or a worker's startup failure (its exit code)."""
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.workers = [self.start_one() for _ in range(self.count)]
            while not self.stopping.wait(0.5):
                self._keep_alive()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for process in self.workers:
                if process.exitcode is None and process.pid is not None:
                    os.kill(process.pid, signal.SIGTERM)  # graceful: finish what is in flight
            for process in self.workers:
                process.join()
        return self.exit_code

    def _keep_alive(self) -> None:
        for i, process in enumerate(self.workers):
            code = process.exitcode
            if code is None:
                continue
            if code == STARTUP_FAILURE:
                log.error("a worker could not start (exit %s); stopping the others", code)
                self.exit_code = code
                self.stopping.set()
                return
            log.warning("worker %s exited (%s); starting another", process.pid, code)
            self.workers[i] = self.start_one()


def serve_workers(options: dict[str, Any], host: str, port: int, count: int) -> int:
    """Run ``count`` uvicorn workers on ``host:port`` (uvicorn ``Config`` ``options``, without
    host, port or workers); returns the exit code for the command."""
    if not can_reuse_port():  # uvicorn's shared socket: it works, only less evenly
        import uvicorn

        uvicorn.run(**options, host=host, port=port, workers=count)
        return 0
    return Supervisor(options, host, port, count).run()
