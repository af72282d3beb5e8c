"""The server's long-lived objects, kept out of the garbage collector's full passes.

A server process holds some 100,000 objects that live as long as it does: FastAPI's routes
and models, uvicorn, each tenant's runtime and its readers. CPython's full (oldest
generation) collection walks every one of them, holding the interpreter lock: under load it
ran every few seconds and took 37–167 ms on 2 busy cores, and every request of the process
waited that long (docs/benchmarks.md, "The tail at 1,000 requests/s"). ``gc.freeze()`` moves
what is alive into a permanent generation that collections skip; what is made later is
collected as before.

The server freezes the heap when it has started and after it opens something long-lived (a
tenant, a reader), and unfreezes it when its last app stops, so that an app that stops (a
test's) leaves nothing frozen. A freeze is cheap (no collection first: the little garbage
it may catch waits for the unfreeze). An app never started through its lifespan (``httpx``
against the ASGI app) freezes nothing.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_serving = 0  # apps started through their lifespan and not stopped yet
settles = 0  # heaps settled so far (tests look at it)


def start() -> None:
    """An app starts serving: freeze what is alive."""
    global _serving
    with _lock:
        _serving += 1
    settle()


def stop() -> None:
    """An app stopped: when it was the last one serving, nothing stays frozen."""
    global _serving
    with _lock:
        _serving = max(0, _serving - 1)
        if _serving == 0:
            gc.unfreeze()


def settle() -> None:
    """While an app serves: freeze what is alive, so that later full collections skip it.
    Call after opening something that lives as long as the server."""
    global settles
    with _lock:
        if _serving == 0:
            return
        gc.freeze()
        settles += 1
