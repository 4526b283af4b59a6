# pcp-hpc — the two commands of the README, and a few helpers.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench clean-demo deb packages-test

setup:            ## system packages, virtual env, pmcd (idempotent)
	bash scripts/setup-node.sh

demo:             ## the demo node: agents on bundled sources, logger services, status
	bash scripts/setup-node.sh --logger
	$(VENV)/bin/hpc-demo up

test: setup lint  ## every test tier, on this machine's real pmcd and services; then the packages
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	$(MAKE) --no-print-directory packages-test

deb:              ## sdist, wheel and Debian package (pcp-hpc_<version>_all.deb) into dist/
	bash scripts/build-deb.sh dist

packages-test:    ## the .deb and the wheel built, installed here, agent tests run against them
	bash scripts/test-packages.sh

lint:
	$(VENV)/bin/ruff check .

bench:            ## benchmarks (side by side, ratios); NAME=... for one
	$(PY) bench/run.py $(or $(NAME),$(shell $(PY) bench/run.py --list | sed -n 's/^benchmarks: //p'))

clean-demo:
	$(VENV)/bin/hpc-demo down
