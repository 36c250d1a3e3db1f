# socialinbox: `make run` (whole product locally) and `make test` (full suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PORT      ?= 8000
MOTO_PORT ?= 5000
STAGE     ?= dev

.PHONY: run test demo bench replay-dlq list-dlq package deploy lint-infra clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)  ## start moto + API + webhooks + event pump on 127.0.0.1:$(PORT)
	PORT=$(PORT) MOTO_PORT=$(MOTO_PORT) $(PY) -m chalicelib.local.server

test: $(STAMP)  ## the whole suite: no network, no AWS account
	$(PY) -m pytest -q

demo: $(STAMP)  ## send signed demo deliveries for every channel to a running `make run`
	$(PY) -m chalicelib.local.demo --url http://127.0.0.1:$(PORT)

bench: $(STAMP)  ## ack-path and processor measurements (see README)
	$(PY) bench/ingest_bench.py

list-dlq: $(STAMP)  ## what is parked in the dead-letter queue, and why
	SOCIALINBOX_STAGE=$(STAGE) $(PY) -m chalicelib.ingest.dlq list

replay-dlq: $(STAMP)  ## move parked envelopes back to the ingest queue
	SOCIALINBOX_STAGE=$(STAGE) $(PY) -m chalicelib.ingest.dlq replay

lint-infra: $(STAMP)
	$(VENV)/bin/cfn-lint infra/resources.json

package: $(STAMP)  ## CloudFormation/SAM package of the Lambda functions into out/
	$(VENV)/bin/chalice package --stage $(STAGE) out/

deploy: $(STAMP)  ## data plane stack, then the Chalice app
	aws cloudformation deploy --stack-name socialinbox-$(STAGE)-data --template-file infra/resources.json \
	  --parameter-overrides Stage=$(STAGE) --no-fail-on-empty-changeset
	$(VENV)/bin/chalice deploy --stage $(STAGE)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis out
