# Set-up is folded into the two commands README names: `make run` and `make test`.
# `make run` installs only what the main job needs; `make test` adds the dev tools and the ray
# extra (so that the suite covers sweeps on a local Ray cluster). Each keeps its own stamp file,
# so either works first on a fresh clone and the other after it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision must come as a matching pair from the registry (a CPU-only torch wheel
# beside the registry's torchvision fails to import); pinning both keeps the pair consistent.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# Test processes (pytest-xdist; tests that share a local Ray run in one: xdist_group). Three on
# 2 cores: many tests wait on an app or a subprocess (4 m 09 s with 2, 3 m 57 s with 3, quiet).
TEST_WORKERS ?= 3

.PHONY: run test screenshots bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e . $(TORCH_PINS)
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,ray]' $(TORCH_PINS)
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/bslab --headless presets/quickstart.json

test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=10

# PNGs need rsvg-convert (Debian/Ubuntu: apt-get install librsvg2-bin) or cairosvg; else SVG only.
screenshots: $(VENV)/.run-installed
	$(BIN)/bslab screenshots --out screenshots

bench: $(VENV)/.run-installed
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) sessions
