# pcp-hpc — the two commands of the README, and a few helpers.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench clean-demo

setup:            ## system packages, virtual env, pmcd (idempotent)
	bash scripts/setup-node.sh

demo:             ## the demo node: agents on bundled sources, logger services, status
	bash scripts/setup-node.sh --logger
	$(VENV)/bin/hpc-demo up

test: setup lint  ## every test tier, on this machine's real pmcd and services
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check .

bench:            ## benchmarks (side by side, ratios); NAME=... for one
	$(PY) bench/run.py $(or $(NAME),$(shell $(PY) bench/run.py --list | sed -n 's/^benchmarks: //p'))

clean-demo:
	$(VENV)/bin/hpc-demo down
