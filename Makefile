# dispatch-replay — the README's commands. Needs only Python 3.11+ and network access to PyPI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The virtualenv is rebuilt whenever the declared dependencies or their pins change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: venv demo test unit lint bench clean build sam deploy

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
# wait on real time (streams, servers, browsers), so two cores halve the wall time. Files
# are handed out heaviest first (tests/conftest.py FILE_SECONDS), not by test count.
unit: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml container.yaml
	$(BIN)/hadolint Dockerfile

# --- Lambda artifacts ---------------------------------------------------------------------
# Python 3.12 (the Lambda runtime's version) builds them: pip resolves the wheels for it and
# compileall writes its byte-code. pyenv's is found without help; else pass PYTHON312=...
# pyenv's root is asked, then its default place (pyenv need not be on PATH), then PATH.
PYTHON312 ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12) \
	$(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) \
	$(shell command -v python3.12 2>/dev/null))
# aarch64 for Lambda (template.yaml: arm64); the artifact tests build an x86_64 twin.
ARCH ?= aarch64
LAMBDA_FUNCTIONS := ControlFunction StreamFunction ChunkerFunction
# The SAM CLI lives in its own virtualenv: its pins are not the app's.
SAM_VENV ?= .venv-sam
SAM_CLI_VERSION ?= 1.170.0
SAM := $(SAM_VENV)/bin/sam

## build: sam build (.aws-sam/build: one folder per function, arm64 wheels, .pyc) via the targets below
build: $(SAM)
	$(SAM) build --build-in-source

$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)'

# What `sam build` runs for each function (BuildMethod: makefile), with ARTIFACTS_DIR set;
# without it (e.g. `make build-ChunkerFunction ARCH=x86_64`) the folder is .aws-sam/build/<id>.
build-%:
	@"$(PYTHON312)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null \
		|| { echo "building Lambda artifacts needs Python 3.12 (the runtime's version): install it (pyenv install 3.12) or pass PYTHON312=/path/to/python3.12" >&2; exit 1; }
	"$(PYTHON312)" lambda_build.py $* "$(or $(ARTIFACTS_DIR),.aws-sam/build/$*)" --arch $(ARCH)

## deploy: build, deploy STACK (default dispatch-replay), publish the dashboard to it (README, "Deploying to AWS")
# The first time, pass the parameters: SAM_DEPLOY_ARGS='--parameter-overrides JwtIssuer=... JwtAudience=...'
# (or SAM_DEPLOY_ARGS=--guided).
STACK ?= dispatch-replay
deploy: venv build
	$(SAM) deploy --stack-name $(STACK) --resolve-s3 --capabilities CAPABILITY_IAM \
		--no-fail-on-empty-changeset $(SAM_DEPLOY_ARGS)
	$(BIN)/dispatch-replay publish-dashboard --stack $(STACK)

# `make -s print-PYTHON312`: a variable as this Makefile resolves it (the artifact tests ask).
print-%:
	@echo '$($*)'

## bench: every benchmark, results as JSON under bench/results/
bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache bench/results/*.tmp
