# Two commands work on a fresh clone: `make run` and `make test`.
# Each sets up the virtual environment it needs (once, and again when pyproject.toml changes).

# The deployed runtime's Python (3.13, see docs/decisions.md) where this machine has it, so the tests run
# on the version Lambda runs; else any python3 (3.11+). Override with PYTHON=...
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13 /usr/bin/python3.13 /usr/local/bin/python3.13) python3)
VENV   := .venv
PY     := $(VENV)/bin/python
# One stamp per Python version: the environment is made again when the interpreter changes.
STAMP  := $(VENV)/.installed-$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
CDK    := npx --yes aws-cdk@2.1148.1
# The manylinux wheels of numpy and scipy for Lambda (the fit function's layer), downloaded once, at the
# versions pyproject.toml pins; synth, deploy and the tests build the layer from them offline, no Docker.
LAMBDA_WHEELS := .cache/lambda-wheels/.downloaded
# The console's charting library (Chart.js, pinned in functions/console/package-lock.json): npm ci, then its
# browser build is copied next to the page (infra/console_assets.py). No front-end build.
CONSOLE_ASSETS := functions/console/node_modules/.installed-from-lock

# moto 5.2.5 with botocore 1.44 needs this for DynamoDB Streams; jsii warns about Node 20.
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: run test synth bench deploy diff clean browser screenshots

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

$(LAMBDA_WHEELS): pyproject.toml infra/lambda_wheels.py | $(STAMP)
	$(PY) -m infra.lambda_wheels

$(CONSOLE_ASSETS): functions/console/package-lock.json infra/console_assets.py | $(STAMP)
	$(PY) -m infra.console_assets

# The browser tests drive Debian's Chromium (Playwright's own download is not reachable). Installed here
# where this user can (root with apt-get, as CI runs); otherwise those tests say why they are skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 \
		|| (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
		|| echo "Chromium could not be installed: the browser tests will be skipped"

## Start the local stack (embedded moto + local HTTP gateway) on http://127.0.0.1:3000
run: $(STAMP) $(CONSOLE_ASSETS)
	$(PY) -m infra.local

## The console's main pages, seeded with a demo population, as PNGs in docs/screenshots/ (Chromium needed)
screenshots: $(STAMP) $(CONSOLE_ASSETS) browser
	$(PY) -m tests.browser.screenshots

## Run every test: unit, integration, infrastructure, property and loopback
test: $(STAMP) $(LAMBDA_WHEELS) $(CONSOLE_ASSETS) browser
	$(PY) -m pytest $(PYTEST_ARGS)

## Write the CloudFormation template to cdk.out/ (offline, no AWS account needed)
synth: $(STAMP) $(LAMBDA_WHEELS) $(CONSOLE_ASSETS)
	$(PY) -m infra.app

## Measure speed, cost and import time; results go into BENCHMARKS.md
bench: $(STAMP)
	$(PY) -m bench

## Deploy to the AWS account and region of your current credentials
deploy: $(STAMP) $(LAMBDA_WHEELS) $(CONSOLE_ASSETS)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) deploy $(CDK_ARGS)

diff: $(STAMP) $(LAMBDA_WHEELS) $(CONSOLE_ASSETS)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) diff $(CDK_ARGS)

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .hypothesis tests/loopback/browser/node_modules functions/console/node_modules .cache
