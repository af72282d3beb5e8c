"""MAGRAY: a local-first AI agent for the terminal with a three-layer semantic memory."""

import os as _os

# numpy's BLAS spins up one thread per core for every small matrix-vector product (exact
# search over an index backlog, rescoring); on a busy machine those threads spin against
# each other and a 0.3 ms product takes tens of milliseconds. MAGRAY's products are small:
# one BLAS thread is faster. Set before numpy is first imported; an explicit value wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
