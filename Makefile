# socialinbox: `make run` (whole product locally) and `make test` (full suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PORT      ?= 8000
MOTO_PORT ?= 5000
STAGE     ?= dev
# Test processes: the suite waits on real timers, servers and a browser much of the time, so
# four workers help even on two cores (each has its own in-process moto backend).
TEST_WORKERS ?= 4

.PHONY: run reset soak test browser screenshots demo bench create-admin replay-dlq list-dlq replay-quarantine lambda-build package deploy lint-infra clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

DATA_DIR  ?= .localdata
MESSAGES  ?= 20000

run: $(STAMP)  ## start moto + API + webhooks + event pump on 127.0.0.1:$(PORT) (moto on MOTO_PORT; exits at once if either port is taken); data kept in DATA_DIR
	PORT=$(PORT) MOTO_PORT=$(MOTO_PORT) SOCIALINBOX_DATA_DIR=$(DATA_DIR) $(PY) -m chalicelib.local.server

reset:  ## wipe what `make run` keeps (DATA_DIR, default .localdata/); stop `make run` first
	rm -rf -- "$(DATA_DIR)"
	@echo "local data wiped ($(DATA_DIR)); the next make run starts empty"

soak: $(STAMP)  ## local soak of make run: MESSAGES signed deliveries, kill -9 midway, figures (bench/README.md)
	$(PY) bench/local_soak.py --messages $(MESSAGES)

test: $(STAMP)  ## the whole suite: no network, no AWS account
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

browser:  ## Debian's chromium for the headless browser tests (they skip without it; CI requires it)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) to run the browser tests"; fi; }

screenshots: $(STAMP)  ## PNGs of the workspace's and the admin screens into docs/screenshots/ (Debian's headless chromium, loopback server, seeded data)
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q tests/test_workspace_more.py tests/test_admin_screens.py -k test_screenshots

demo: $(STAMP)  ## send signed demo deliveries for every channel to a running `make run`
	$(PY) -m chalicelib.local.demo --url http://127.0.0.1:$(PORT)

bench: $(STAMP)  ## ingest (ack path, processor, requests, WRU, imports), reply-deadline flow and agent API measurements (bench/README.md)
	$(PY) bench/ingest_bench.py

create-admin: $(STAMP)  ## the first admin of a stage: STAGE=dev EMAIL=... NAME=... (password asked, or first line of stdin; never echoed)
	@test -n "$(EMAIL)" && test -n "$(NAME)" || { echo "usage: make create-admin STAGE=dev EMAIL=ops@example.com NAME='Ops Admin'"; exit 2; }
	SOCIALINBOX_STAGE=$(STAGE) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.api.people create-admin \
	  --email "$(EMAIL)" --name "$(NAME)"

list-dlq: $(STAMP)  ## what is parked in the dead-letter queue, and why (STAGE=local: the `make run` stack on MOTO_PORT)
	SOCIALINBOX_STAGE=$(STAGE) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.ingest.dlq list

replay-quarantine: $(STAMP)  ## replay events held for an unknown account (after registering it): CHANNEL=, ACCOUNT=
	SOCIALINBOX_STAGE=$(STAGE) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.ingest.replay replay \
	  --channel "$(CHANNEL)" --account-id "$(ACCOUNT)"

replay-dlq: $(STAMP)  ## move parked envelopes back to the ingest queue (STAGE=local: the `make run` stack on MOTO_PORT)
	SOCIALINBOX_STAGE=$(STAGE) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.ingest.dlq replay

lint-infra: $(STAMP)
	mkdir -p out && $(PY) -m chalicelib.local.stack render > out/resources.json
	$(VENV)/bin/cfn-lint out/resources.json

# The Lambda runtime already ships boto3/botocore (and their helpers); pynamodb and aws-xray-sdk
# would drag a second ~17 MB botocore into the zip. The build dir vendors requirements.txt for
# Lambda's platform, drops what the runtime provides, and hands chalice an empty requirements.txt.
BUILD := build/lambda
RUNTIME_PROVIDED := boto3 botocore s3transfer jmespath dateutil python_dateutil six
lambda-build: $(STAMP)
	rm -rf $(BUILD) && mkdir -p $(BUILD)/vendor
	cp -r app.py chalicelib .chalice $(BUILD)/
	rm -rf $(BUILD)/chalicelib/local
	$(PY) -m pip install --quiet --disable-pip-version-check --target $(BUILD)/vendor \
	  --platform manylinux2014_x86_64 --implementation cp --python-version 3.11 --only-binary=:all: \
	  -r requirements.txt
	cd $(BUILD)/vendor && for p in $(RUNTIME_PROVIDED); do rm -rf $$p $$p.py $$p-*.dist-info; done
	find $(BUILD) -name __pycache__ -prune -exec rm -rf {} +
	# Lambda's file system is read-only: ship bytecode that is valid without checking sources
	# (chalice picks the runtime from this Python's version, so the magic number matches).
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(BUILD)
	: > $(BUILD)/requirements.txt

package: lambda-build  ## CloudFormation/SAM package of the Lambda functions into out/
	cd $(BUILD) && AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} ../../$(VENV)/bin/chalice package --stage $(STAGE) ../../out/

deploy: lambda-build  ## data plane stack, then the Chalice app
	mkdir -p out && $(PY) -m chalicelib.local.stack render > out/resources.json  # + the SLA flow's ASL
	aws cloudformation deploy --stack-name socialinbox-$(STAGE)-data --template-file out/resources.json \
	  --parameter-overrides Stage=$(STAGE) --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset
	mkdir -p .chalice/deployed && cp -r .chalice/deployed $(BUILD)/.chalice/
	cd $(BUILD) && ../../$(VENV)/bin/chalice deploy --stage $(STAGE)
	cp -r $(BUILD)/.chalice/deployed/. .chalice/deployed/

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis out build
