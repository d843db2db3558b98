# The project's verbs. `make test` is the one command CI runs; `make local` serves the system offline.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# aws-sam-cli pins an older boto3 than the test tools: it lives in a virtualenv of its own,
# needed only to build and deploy.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# checkov pins many packages of its own too. It scans the SAM resources themselves (Globals
# merged), offline: no update check (CKV_SKIP_PACKAGE_UPDATE_CHECK), no download.
CHECKOV_VENV := .venv-checkov
# sam build calls no AWS service: a region and dummy credentials keep it from looking for real ones.
OFFLINE_AWS := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline SAM_CLI_TELEMETRY=0

.PHONY: dev lint test e2e local token show show-availability traces preflight bench flash-sale reliability build deploy clean

dev: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# cfn-lint transforms the SAM template with aws-sam-translator before linting it: it is what
# `sam validate --lint` runs, with the same versions, so it runs once, here.
lint: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/statelint statemachine/*.asl.json
	$(BIN)/cfn-lint template.yaml
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download -f template.yaml --framework cloudformation

# Then the end-to-end suite, against a `make local` it starts on free ports, so that it never rots.
test: lint
	$(BIN)/pytest
	E2E_START_LOCAL=1 $(E2E)

# The end-to-end suite (tests/e2e), run right after `sam deploy`: make e2e STACK=<name>; without
# STACK, against a running `make local` (DATABASE_URL: the catalog URL its banner prints).
# --confcutdir keeps tests/conftest.py's fake AWS credentials out of it.
E2E := $(BIN)/pytest -q -m e2e --confcutdir tests/e2e tests/e2e

e2e: $(VENV)/.installed
	E2E_STACK="$$STACK" $(E2E)

# The whole system offline: HTTP API on :3000, AWS endpoint on :4566. Ctrl-C stops it.
local: $(VENV)/.installed
	$(BIN)/python -m offline

# A buyer's token that a running `make local` accepts, from its own issuer: make token USER=ana
# (USER defaults to your login name; LOCAL_API_PORT if the stack runs on another port).
token: $(VENV)/.installed
	@$(BIN)/python -m offline.token "$(USER)"

# Create or update a show in the catalog and ShowTickets (docs/catalog.md):
#   make show NAME="Rock in Rio" PRICE=50 TICKETS=1000 [BUCKETS=16] [MAX_PER_BUYER=4] [STACK=ticketera]
# Without STACK it writes to `make local` (DATABASE_URL: the catalog URL its banner prints).
show: $(VENV)/.installed
	PYTHONPATH=functions/flyer:layers/card_validation $(BIN)/python -m tools.show \
		--name "$$NAME" --price "$$PRICE" --tickets "$$TICKETS" --buckets "$$BUCKETS" \
		--max-per-buyer "$$MAX_PER_BUYER" --stack "$$STACK"

# What a show has left to sell, bucket by bucket, and what it sold: make show-availability NAME=...
show-availability: $(VENV)/.installed
	PYTHONPATH=functions/flyer:layers/card_validation $(BIN)/python -m tools.show --availability \
		--name "$$NAME" --stack "$$STACK"

# Recent executions of the local state machine, or one's trace: make traces EXECUTION=name
traces: $(VENV)/.installed
	$(BIN)/python -m offline.traces $(EXECUTION)

# Before an on-sale: what binds first at RATE buyers a second, and what to raise (README, On-sale
# checklist): make preflight RATE=800 [STACK=ticketera]; without STACK, the running make local.
preflight: $(VENV)/.installed
	$(BIN)/python -m tools.preflight --rate "$$RATE" --stack "$$STACK"

# Cold start, package sizes and the cost model: BENCHMARKS.md
bench: $(VENV)/.installed
	$(BIN)/python -m bench

# A hot show's rush on the contention model, one show in one item against one in buckets; writes
# its section of BENCHMARKS.md and fails if any run broke a rule. STOCK=, BUYERS=, RATE= (buyers a
# second), BUCKETS= run one combination instead, printed only.
flash-sale: $(VENV)/.installed
	$(BIN)/python -m bench.flash_sale --stock "$$STOCK" --buyers "$$BUYERS" --rate "$$RATE" \
		--buckets "$$BUCKETS"

# Concurrency, faults, hostile input and the card number scan; writes RELIABILITY.md.
reliability: $(VENV)/.installed
	RELIABILITY_REPORT=RELIABILITY.md $(BIN)/pytest -q tests/integration/test_reliability.py \
		tests/integration/test_purchase_faults.py tests/integration/test_purchase_fuzz.py \
		tests/integration/test_buyer_auth.py

# sam build runs pip with a Python 3.13, the functions' runtime: tools/python313.sh finds one
# (PYTHON313=/path/to/python3.13, else the PATH, else pyenv's installed versions, active or not),
# puts it first on sam's PATH, or says in one line how to get one. Then what it built is inspected.
build: $(SAM_VENV)/.installed $(VENV)/.installed
	$(OFFLINE_AWS) tools/python313.sh $(SAM) build
	INSPECT_BUILD=required $(BIN)/pytest -q tests/artifacts

# Deploys what `make build` just built and inspected, with the same Python 3.13.
deploy: build
	SAM_CLI_TELEMETRY=0 $(SAM) deploy --guided
	@echo "Deployed. Next, the end-to-end suite against it: make e2e STACK=<the stack name you gave>"

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
