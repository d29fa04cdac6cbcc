# Idempotent set-up: `make` targets create .venv once and re-install only when
# pyproject.toml changes (the stamp file tracks it).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch; a GPU user runs `make TORCH_INDEX=https://download.pytorch.org/whl/cu128 install` instead.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install run train test lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# The main job: a whole search on the embedded default (local Ray + SQLite at ./hpo.db).
run: install
	$(BIN)/hpo run search_spaces/mlp_digits.yaml

# One trial of the training core with the example spec's fixed values.
train: install
	$(BIN)/hpo train search_spaces/mlp_digits.yaml

test: install
	bash .ci/run

lint: install
	$(BIN)/ruff check hpo api tests benchmarks
	$(BIN)/ruff format --check hpo api tests benchmarks

typecheck: install
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
