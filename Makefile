# Two commands for a fresh machine: `make run` and `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
WIDGET_BUNDLE := widget/dist/widget.js

export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: help setup system-deps train run shell triton telegram lint format test test-fast bench reports loadtest clean

help:
	@echo "make run    set up, train if the data changed, start Triton + actions + Rasa, print where to chat"
	@echo "make run REPLICAS=3  the same with 3 Rasa processes behind HAProxy, PostgreSQL and a Redis lock store"
	@echo "make test   set up and run the whole test suite (in a random order; the seed is printed first)"
	@echo "make lint   ruff (lint and format check), mypy and the import contract; part of make test"
	@echo "make test-fast  the tests that train nothing and start no server (the lane for daily work)"
	@echo "make bench  fine-tune and compare against Rasa's DIET pipeline on ../shared/datasets"
	@echo "make loadtest  200 conversations at once with Locust, 1 and 3 Rasa replicas: docs/load.md"
	@echo "make reports  Rasa's own test reports (held-out dialogues and NLU examples) into docs/reports/"
	@echo "make shell  chat in the terminal with the bot that 'make run' serves (second shell)"
	@echo "make telegram  like make run, and answer in Telegram by polling (needs TELEGRAM_BOT_TOKEN)"
	@echo "Environment: VENV=$(VENV) (override with VENV=/path)"

setup: $(STAMP) $(WIDGET_BUNDLE)

# Python 3.10 (Rasa 3.6 needs < 3.11), then the exact versions of requirements.lock; never resolves.
# Compiled to bytecode once here: where PYTHONDONTWRITEBYTECODE is set (as on this project's
# machines), every process would otherwise compile TensorFlow, torch and Rasa from source again,
# and importing them would take twice as long (42 s instead of 19 s on two cores).
$(STAMP): requirements.lock pyproject.toml scripts/python310.sh Makefile
	@set -e; python=$$(scripts/python310.sh); \
	  [ -x $(PY) ] || $$python -m venv $(VENV); \
	  $(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.9; \
	  $(VENV)/bin/uv pip sync --quiet --compile-bytecode --python $(PY) requirements.lock; \
	  $(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .; \
	  rm -f $(VENV)/.installed-*; touch $@

# The web widget as one file (socket.io client included, nothing fetched at run time), rebuilt
# from widget/src with the versions pinned in widget/package-lock.json when they change; installs
# Debian's Node.js and npm first where they are missing.
$(WIDGET_BUNDLE): widget/package.json widget/package-lock.json $(wildcard widget/src/*)
	@scripts/system-deps.sh run
	cd widget && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

# Then the new Rasa model's file goes on the MLflow run that fine-tuned its NLU (nlu/training/tracking.py).
train: setup
	$(RASA) train
	$(PY) -m nlu.training.tracking_cli link

# REPLICAS=N (N > 1): N Rasa processes behind HAProxy, with PostgreSQL and a Redis lock store
# (bot/replicas.py), whose Debian packages are installed first where missing.
REPLICAS ?= 1
run: setup
	@if [ "$(REPLICAS)" -gt 1 ]; then scripts/system-deps.sh replicas; fi
	$(PY) -m bot run --replicas $(REPLICAS)

# A client of the running bot's shell channel, with the token `make run` generated (.run/secrets.env).
shell: setup
	@$(PY) -m bot shell

triton: setup
	$(PY) -m bot triton

telegram: setup
	$(PY) -m bot run --telegram

# Debian packages the suite needs (Node.js, Chromium, PostgreSQL, debootstrap); installs only what
# is missing. Before setup, so that one apt-get run installs everything.
system-deps:
	@scripts/system-deps.sh test

# The style contract in pyproject.toml: ruff's rules and format, mypy's types, and the import
# contract (serving never imports training, torch or transformers). `make format` fixes what ruff can.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: system-deps setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The lane for daily work (under 3 minutes): every test that needs no Triton, PostgreSQL or browser,
# so it trains no bot and starts no Rasa server (tests/conftest.py SLOW_FIXTURES).
test-fast: system-deps setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench $(BENCH_ARGS)

# The bot under load, one Rasa against several (loadtest/): docs/load.md. Needs a trained model.
loadtest: setup
	@scripts/system-deps.sh replicas
	$(PY) -m loadtest $(LOADTEST_ARGS)

# Rasa's own test reports of the support bot into docs/reports/ (see scripts/reports.sh).
reports: setup
	@VENV=$(VENV) scripts/reports.sh

clean:
	rm -rf models .rasa .run .triton results widget/dist
