# socialinbox: `make run` (whole product locally) and `make test` (full suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PORT      ?= 8000
PUSH_PORT ?= $(shell echo $$(( $(PORT) + 1 )))
MOTO_PORT ?= 5000
STAGE     ?= dev
# The AWS CLI the deploy targets call: the one requirements-dev.txt pins (no system install needed).
AWS       := $(VENV)/bin/aws
# Test processes: the suite waits on real timers, servers and a browser much of the time, so
# four workers help even on two cores (each has its own in-process moto backend).
TEST_WORKERS ?= 4

.PHONY: deploy-rehearsal reports-rebuild run reset soak test browser screenshots demo history bench bench-listening x-subscribe create-admin replay-dlq list-dlq replay-quarantine lambda-build render package deploy-package deploy secrets teardown lint-infra clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

DATA_DIR  ?= .localdata
MESSAGES  ?= 20000
# `make run` plays a month of demo history into a fresh stack (HISTORY=0: an empty inbox).
HISTORY   ?= 1

run: $(STAMP)  ## start moto + API + webhooks + event pump on 127.0.0.1:$(PORT) (moto on MOTO_PORT; exits at once if either port is taken); data kept in DATA_DIR
	PORT=$(PORT) MOTO_PORT=$(MOTO_PORT) PUSH_PORT=$(PUSH_PORT) SOCIALINBOX_DATA_DIR=$(DATA_DIR) SOCIALINBOX_DEMO_HISTORY=$(HISTORY) PROFILE_LOOKUPS=$${PROFILE_LOOKUPS:-on} $(PY) -m chalicelib.local.server

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
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q tests/test_workspace_more.py tests/test_admin_screens.py tests/test_listening_admin_browser.py tests/test_topics_report_screen.py tests/test_staffing_screen.py tests/test_templates_browser.py tests/test_channels_browser.py tests/test_posts_browser.py tests/test_reports_drill_screen.py tests/test_attention_screen.py -k "test_screenshots or shows_the_plan or offers_templates or show_the_post_behind or open_the_conversations or attention_section_shows or not_summoned or sent_on_telegram"

demo: $(STAMP)  ## send signed demo deliveries for every channel to a running `make run`
	$(PY) -m chalicelib.local.demo --url http://127.0.0.1:$(PORT)

history: $(STAMP)  ## a month of inbox life played through the real pipeline into a running `make run` (Reports and Staffing get real charts; once per stack; DAYS=30 SCALE=0.06)
	SOCIALINBOX_STAGE=local MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.local.history --days $(or $(DAYS),30) --scale $(or $(SCALE),0.06)

bench: $(STAMP)  ## ingest (ack path, processor, requests, WRU, imports), reply-deadline flow and agent API measurements (bench/README.md)
	$(PY) bench/ingest_bench.py

x-subscribe: $(STAMP)  ## X Activity API: register the webhook + the account's subscriptions: ACCOUNT=<X user id> URL=https://<api>/webhooks/x [SANDBOX=1: offline, URL may be a `make run` loopback one] [STAGE=...]
	@test -n "$(ACCOUNT)" && test -n "$(URL)" || { echo "usage: make x-subscribe ACCOUNT=1520000000000000001 URL=https://api.example.com/webhooks/x [SANDBOX=1]"; exit 2; }
	SOCIALINBOX_STAGE=$(if $(SANDBOX),local,$(STAGE)) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.channels.x subscribe \
	  --account-id "$(ACCOUNT)" --webhook-url "$(URL)" $(if $(SANDBOX),--sandbox)

bench-listening: $(STAMP)  ## listening: processor CPU with/without sentiment+topics (ratio), cold start, zip, accuracy (README "Listening")
	$(PY) bench/listening_bench.py

create-admin: $(STAMP)  ## the first admin of a stage: STAGE=dev EMAIL=... NAME=... (password asked, or first line of stdin; never echoed)
	@test -n "$(EMAIL)" && test -n "$(NAME)" || { echo "usage: make create-admin STAGE=dev EMAIL=ops@example.com NAME='Ops Admin'"; exit 2; }
	SOCIALINBOX_STAGE=$(STAGE) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.api.people create-admin \
	  --email "$(EMAIL)" --name "$(NAME)"

reports-rebuild: $(STAMP)  ## recompute the report counters of FROM..TO (ISO dates in ZONE, default UTC) from the event log (STAGE=local: the `make run` stack)
	@test -n "$(FROM)" && test -n "$(TO)" || { echo "usage: make reports-rebuild FROM=2026-11-01 TO=2026-12-01 [ZONE=Europe/Berlin] [STAGE=local]"; exit 2; }
	SOCIALINBOX_STAGE=$(STAGE) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.reports.rebuild --from "$(FROM)" --to "$(TO)" --tz "$(or $(ZONE),UTC)"

list-dlq: $(STAMP)  ## what is parked in the dead-letter queue, and why (STAGE=local: the `make run` stack on MOTO_PORT)
	SOCIALINBOX_STAGE=$(STAGE) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.ingest.dlq list

replay-quarantine: $(STAMP)  ## replay events held for an unknown account (after registering it): CHANNEL=, ACCOUNT=
	SOCIALINBOX_STAGE=$(STAGE) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.ingest.replay replay \
	  --channel "$(CHANNEL)" --account-id "$(ACCOUNT)"

replay-dlq: $(STAMP)  ## move parked envelopes back to the ingest queue (STAGE=local: the `make run` stack on MOTO_PORT)
	SOCIALINBOX_STAGE=$(STAGE) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.ingest.dlq replay

lint-infra: $(STAMP)  ## cfn-lint the rendered data stack (the one-artifact package is linted by `make package`)
	mkdir -p out && $(PY) -m chalicelib.local.stack render > out/resources.json
	$(VENV)/bin/cfn-lint out/resources.json

# The Lambda runtime already ships boto3/botocore (and their helpers); pynamodb and aws-xray-sdk
# would drag a second ~17 MB botocore into the zip. The build dir vendors requirements.txt for
# Lambda's platform, drops what the runtime provides and what nothing imports (infra/lean.py:
# each rule says why), proves every module still imports without the dev packages, and hands
# chalice an empty requirements.txt.
BUILD := build/lambda
RUNTIME_PROVIDED := boto3 botocore s3transfer jmespath dateutil python_dateutil six
AWS_REGION_DEFAULT = $${AWS_DEFAULT_REGION:-$${AWS_REGION:-us-east-1}}
lambda-build: $(STAMP)  ## the lean Lambda build directory (build/lambda); needs the package registry, no AWS
	rm -rf $(BUILD) && mkdir -p $(BUILD)/vendor
	cp -r app.py chalicelib .chalice $(BUILD)/
	rm -rf $(BUILD)/chalicelib/local $(BUILD)/.chalice/deployed $(BUILD)/.chalice/deployments
	$(PY) -m pip install --quiet --disable-pip-version-check --target $(BUILD)/vendor \
	  --platform manylinux2014_x86_64 --implementation cp --python-version 3.11 --only-binary=:all: \
	  -r requirements.txt
	cd $(BUILD)/vendor && for p in $(RUNTIME_PROVIDED); do rm -rf $$p $$p.py $$p-*.dist-info; done
	find $(BUILD) -name __pycache__ -prune -exec rm -rf {} +
	$(PY) -m infra.lean prune $(BUILD)
	# Lambda's file system is read-only: ship bytecode that is valid without checking sources
	# (chalice picks the runtime from this Python's version, so the magic number matches).
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(BUILD)/app.py $(BUILD)/chalicelib
	$(PY) -m infra.lean smoke $(BUILD)
	: > $(BUILD)/requirements.txt

render: $(STAMP)
	mkdir -p out && $(PY) -m chalicelib.local.stack render > out/resources.json  # + the SLA flow's ASL

# One artifact: the data stack and the functions in one SAM template (out/package/sam.json +
# deployment.zip), offline, no AWS account. Deploy it with `make deploy-package BUCKET=...`.
package: lambda-build render  ## one SAM template + zip of everything into out/package/ (offline), cfn-linted
	$(PY) -m infra.deploy configure --stage $(STAGE) --build $(BUILD)
	rm -rf out/package
	cd $(BUILD) && AWS_DEFAULT_REGION=$(AWS_REGION_DEFAULT) ../../$(VENV)/bin/chalice package --stage $(STAGE) \
	  --merge-template ../../out/resources.json ../../out/package
	$(PY) -m infra.deploy fix-package --stage $(STAGE) out/package/sam.json
	$(VENV)/bin/cfn-lint out/package/sam.json
	@ls -l out/package

deploy-package: package  ## the one-artifact path: BUCKET=<s3 bucket for the zip and the template> (stack socialinbox-STAGE)
	@test -n "$(BUCKET)" || { echo "usage: make deploy-package STAGE=dev BUCKET=my-artifacts-bucket"; exit 2; }
	$(PY) -m infra.deploy partial-batches --stage $(STAGE) --mappings-only  # existing mappings first (docs/DEPLOY.md)
	$(AWS) cloudformation package --template-file out/package/sam.json --s3-bucket $(BUCKET) \
	  --output-template-file out/package/packaged.json
	$(AWS) cloudformation deploy --stack-name socialinbox-$(STAGE) --template-file out/package/packaged.json \
	  --s3-bucket $(BUCKET) --s3-prefix templates \
	  --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
	  $(if $(ALARM_EMAIL),--parameter-overrides AlarmEmail=$(ALARM_EMAIL))

# Two stacks (the default): the data stack first (its template goes through the stage's artefacts
# bucket, created on the first deploy: CloudFormation takes at most 51,200 bytes inline), its
# outputs written to out/, turned into the build's stage config and per-function policies
# (infra/deploy.py), then `chalice deploy`. ARTIFACTS_BUCKET=<yours> instead of the stage's own.
# HEALTH_CHECK: what is called with the new API's /health URL (the rehearsal replaces curl).
HEALTH_CHECK ?= curl -fsS
# Index migrations (infra/index_migration.py, docs/DEPLOY.md "Upgrades that change indexes"):
# `index-plan` compares the deployed data stack with out/resources.json and writes the EXPAND steps
# (new indexes, one per table per update, old ones kept), deployed before chalice deploy, and the
# CONTRACT steps (old indexes deleted, the last one the target), deployed after it and the
# backfills. No step files (a fresh account, no index change): the one data stack deploy of before.
INDEX_STEPS = out/index-steps
ARTIFACTS = bucket=$$($(PY) -m infra.deploy artifacts-bucket --stage $(STAGE) --bucket "$(ARTIFACTS_BUCKET)")
# Each step is deployed exactly as the target is below (tests/test_index_migration.py compares them).
DATA_STACK_DEPLOY = $(AWS) cloudformation deploy --stack-name socialinbox-$(STAGE)-data \
	  --s3-bucket "$$bucket" --s3-prefix templates \
	  --parameter-overrides Stage=$(STAGE) $(if $(ALARM_EMAIL),AlarmEmail=$(ALARM_EMAIL)) \
	  --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset
# $(call index-steps,expand|contract): deploy that phase's step files in order, if there are any.
index-steps = if [ -f $(INDEX_STEPS)/$(1)-1.json ]; then $(ARTIFACTS) && n=1 && \
	  while [ -f $(INDEX_STEPS)/$(1)-$$n.json ]; do echo "index migration: $(1) step $$n" && \
	  $(DATA_STACK_DEPLOY) --template-file $(INDEX_STEPS)/$(1)-$$n.json || exit 1; n=$$((n+1)); done; fi
deploy: lambda-build render  ## data stack, its outputs -> stage config, then chalice deploy; ALARM_EMAIL=... optional
	$(PY) -m infra.deploy index-plan --stage $(STAGE) --template out/resources.json --out $(INDEX_STEPS)
	$(call index-steps,expand)
	test -f $(INDEX_STEPS)/contract-1.json || { $(ARTIFACTS) && \
	$(AWS) cloudformation deploy --stack-name socialinbox-$(STAGE)-data --template-file out/resources.json \
	  --s3-bucket "$$bucket" --s3-prefix templates \
	  --parameter-overrides Stage=$(STAGE) $(if $(ALARM_EMAIL),AlarmEmail=$(ALARM_EMAIL)) \
	  --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset; }
	$(AWS) cloudformation describe-stacks --stack-name socialinbox-$(STAGE)-data --output json \
	  > out/stack-outputs-$(STAGE).json
	$(PY) -m infra.deploy configure --stage $(STAGE) --build $(BUILD) --outputs out/stack-outputs-$(STAGE).json
	mkdir -p .chalice/deployed && cp -r .chalice/deployed $(BUILD)/.chalice/
	$(PY) -m infra.deploy async-invocations --stage $(STAGE) --existing-only  # the processor's destination before a new webhook invokes it
	cd $(BUILD) && ../../$(VENV)/bin/chalice deploy --stage $(STAGE)
	cp -r $(BUILD)/.chalice/deployed/. .chalice/deployed/
	$(PY) -m infra.deploy async-invocations --stage $(STAGE)  # retries, event age, on-failure destination (Chalice cannot)
	$(PY) -m infra.deploy partial-batches --stage $(STAGE)  # ReportBatchItemFailures, then the variable
	$(PY) -m infra.deploy function-url --stage $(STAGE)  # the webhooks' and the inbox's URLs + permissions (Chalice cannot)
	$(PY) -m infra.deploy push-endpoint --stage $(STAGE)  # the WebSocket API's endpoint on every function
	$(PY) -m infra.deploy platform-logs --stage $(STAGE)  # no START/END/REPORT log lines (Chalice cannot)
	$(PY) -m infra.deploy backfill --stage $(STAGE)  # existing items get new index keys (infra/backfills.py)
	$(call index-steps,contract)
	@url=$$(cd $(BUILD) && ../../$(VENV)/bin/chalice url --stage $(STAGE)) && echo "health: $${url}health" && \
	  $(HEALTH_CHECK) "$${url}health" && echo

# The whole operator's sequence against an emulated AWS account (moto on a free loopback port, no
# AWS account, no network): deploy, first admin, a second deploy as an upgrade, teardown, with
# what exists checked after each (infra/rehearsal.py; docs/DEPLOY.md). Any stage name but local.
deploy-rehearsal: $(STAMP)  ## rehearse make deploy / create-admin / upgrade / teardown on a loopback moto: STAGE=staging
	$(PY) -m infra.rehearsal --stage $(STAGE)

secrets: $(STAMP)  ## put secrets into SSM as SecureStrings: STAGE=dev [NAMES="META_APP_SECRET ..."] (asked, never echoed; empty keeps)
	$(PY) -m infra.deploy put-secrets --stage $(STAGE) $(NAMES)

teardown:  ## delete the functions and the data stack of STAGE; tables are kept (DeletionPolicy Retain), see docs/DEPLOY.md
	@test "$(CONFIRM)" = "$(STAGE)" || { echo "usage: make teardown STAGE=$(STAGE) CONFIRM=$(STAGE)"; exit 2; }
	$(VENV)/bin/chalice delete --stage $(STAGE)  # reads .chalice/deployed/$(STAGE).json (kept by make deploy)
	$(AWS) cloudformation delete-stack --stack-name socialinbox-$(STAGE)-data
	$(AWS) cloudformation wait stack-delete-complete --stack-name socialinbox-$(STAGE)-data

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis out build
