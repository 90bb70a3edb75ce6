# Set-up is folded into the two commands README names: `make run` and `make test`.
# The ray extra is installed too, so that `make test` covers sweeps on a (local) Ray cluster.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision must come as a matching pair from the registry (a CPU-only torch wheel
# beside the registry's torchvision fails to import); pinning both keeps the pair consistent.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: run test lint screenshots bench clean

$(BIN)/bslab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e '.[dev,ray]' $(TORCH_PINS)
	touch $@

run: $(BIN)/bslab
	$(BIN)/bslab --headless presets/quickstart.json

test: $(BIN)/bslab
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# PNGs need rsvg-convert (Debian/Ubuntu: apt-get install librsvg2-bin) or cairosvg; else SVG only.
screenshots: $(BIN)/bslab
	$(BIN)/bslab screenshots --out screenshots

bench: $(BIN)/bslab
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) sessions
