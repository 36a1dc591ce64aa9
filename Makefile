# Abaco: local stack on one Debian machine. Every target is idempotent.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

.PHONY: help up down restart test bench services services-stop services-status images images-force \
	compose-build compose-up compose-down compose-test compose-test-full

help:
	@echo "make up               install what is missing, start the whole stack, print the base URL"
	@echo "make test             bring the stack up and run every test (PYTEST_ARGS='-m unit' for one marker)"
	@echo "make down             stop exactly what 'make up' started"
	@echo "make bench            measure Abaco against the Docker floor (bench/README.md)"
	@echo "make services         start Redis, RabbitMQ and dockerd where not running (scripts/services.sh)"
	@echo "make services-stop    stop what 'make services' started (never a service someone else started)"
	@echo "make services-status  one line per service"
	@echo "make images           build the local images (bases when missing, wheelhouse, core, samples)"
	@echo "make images-force     same, rebuilding the base images and the wheelhouse"
	@echo "make compose-build    the images of the containerised stack (core, nginx, redis, rabbitmq, testsuite)"
	@echo "make compose-up       the stack in containers (docker-compose.yml), building what is missing"
	@echo "make compose-down     take it down, with the worker and actor containers it made"
	@echo "make compose-test     the compose suite: images, stacks in snake and camel case, testsuite image (tests/compose)"
	@echo "make compose-test-full  the same with every functional test in both cases"

# ---- services ------------------------------------------------------------------------------------
services:
	scripts/services.sh start all

services-stop:
	scripts/services.sh stop all

services-status:
	scripts/services.sh status all

# ---- images --------------------------------------------------------------------------------------
images:
	images/build.sh all

images-force:
	images/build.sh all --force

# ---- stack and tests -----------------------------------------------------------------------------
# ABACO_CONF picks the configuration file (default local-dev.conf); PYTEST_ARGS narrows the tests.
up:
	scripts/up.sh

down:
	scripts/down.sh

restart:
	scripts/down.sh && scripts/up.sh

# Everything once in the configured case (snake), then the functional suite again against a
# camel-case server; `make test PYTEST_ARGS=...` runs only what you name, once.
# Abaco against the Docker floor: table on stdout, JSON and PNG plots in bench/results/
bench: up
	command -v wrk >/dev/null || apt-get install -y -q wrk
	.venv/bin/pip install -q -r bench/requirements.txt
	.venv/bin/python bench/bench.py $(BENCH_ARGS)

test: up
ifeq ($(strip $(PYTEST_ARGS)),)
	.venv/bin/python -m pytest
	ABACO_TEST_CASE=camel .venv/bin/python -m pytest -m functional
else
	.venv/bin/python -m pytest $(PYTEST_ARGS)
endif

# ---- the containerised stack (README "Run it in containers") --------------------------------------
compose-build:
	scripts/compose.sh build --testsuite

compose-up:
	scripts/compose.sh up

compose-down:
	scripts/compose.sh down

# The compose suite runs on ports of its own, beside `make up`'s stack; it needs the test venv.
compose-test:
	test -x .venv/bin/python || { python3 -m venv .venv && .venv/bin/pip install -q -r requirements-test.txt; }
	.venv/bin/python -m pytest -m compose tests/compose $(PYTEST_ARGS)

compose-test-full:
	$(MAKE) compose-test ABACO_COMPOSE_FUNCTIONAL=all
