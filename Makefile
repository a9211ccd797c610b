# dispatch-replay — the README's commands. Needs only Python 3.11+ and network access to PyPI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The virtualenv is rebuilt whenever the declared dependencies or their pins change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: venv demo test unit lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "dispatch-replay needs Python 3.11 or newer ($(PYTHON) is older)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

## demo: generate a sample airport day, chunk it into the embedded moto server, serve on :8000
demo: venv
	$(BIN)/dispatch-replay demo

## test: lint, type-check and the whole test suite
test: lint unit

# Two workers, each test file on one of them (module fixtures start once): most tests
# wait on real time (streams, servers, browsers), so two cores halve the wall time.
unit: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

## bench: every benchmark, results as JSON under bench/results/
bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/results/*.tmp
