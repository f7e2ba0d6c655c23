# socketlab: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PYTEST_ARGS ?=

.PHONY: help setup venv build up down test check bench

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup:  ## install and start Docker, Compose v2, buildx and the Debian base image (idempotent)
	scripts/setup-host.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed  ## the Python environment for tests and benchmarks

build: setup  ## build every image, the PowerPC guest included (cached by layers)
	docker compose build

up: build  ## bring the lab up: the demos run, the server stays up (Ctrl-C to stop)
	docker compose up

down:  ## stop the lab and remove its containers and networks
	docker compose down --remove-orphans

check: venv  ## the fast tiers only: unit and loopback (no Docker)
	$(VENV)/bin/pytest -m "unit or loopback" $(PYTEST_ARGS)

test: build venv  ## every tier: unit, loopback, lab, guest (the CI command)
	mkdir -p artifacts
	SOCKETLAB_REQUIRE_LAB=1 SOCKETLAB_LAB_BUILD=0 $(VENV)/bin/pytest \
		--junitxml=artifacts/junit.xml $(PYTEST_ARGS)

bench: build venv  ## print the app-server and guest-boot benchmarks
	$(VENV)/bin/python benchmarks/app_server.py
	$(VENV)/bin/python benchmarks/guest_boot.py
