# Bookend — run `make help` for the targets.
SWIFT ?= swift
BUILD_FLAGS ?=
# How many tests of `make test` run at once (swift-testing's parallelization width; see the test target).
TEST_WIDTH ?= 32
DATA_DIR ?= var/demo

.DEFAULT_GOAL := help

.PHONY: help deps test-deps slurm-deps build test install sdk-test slurm-test bench-slurm sdk-venv az-venv az-demo serve demo release bench clean ui-deps ui-venv ui-test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install the system packages Bookend needs (libsqlite3-dev, sqlite3; openssl makes the tests' certificates) when missing
	@missing=""; for p in libsqlite3-dev sqlite3 openssl; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# For the operations tests: a real Prometheus server scrapes a live daemon, and systemd-analyze checks
# the unit. Installed when missing; the tests say why they skip if either still cannot run.
test-deps: deps ## install what the operations tests use (prometheus, systemd's systemd-analyze) when missing
	@missing=""; command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		{ $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; } \
			|| echo "could not install$$missing: the tests that need it will skip and say so"; \
	fi

build: deps ## build everything (debug)
	$(SWIFT) build $(BUILD_FLAGS)

test: deps test-deps ## run the whole test suite (swift test, the official Python SDK against bookend serve, then the dashboard in a browser)
	# The crash tests start many engines and kill them; they run on their own so that timing-sensitive
	# tests elsewhere do not share two cores with them. At most TEST_WIDTH tests run at once: left
	# unbounded, swift-testing starts all of them together, and a few hundred engines ticking at once
	# on two cores left every in-process server without an answer for a minute.
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=$(TEST_WIDTH) $(SWIFT) test $(BUILD_FLAGS) --skip CrashTests
	$(SWIFT) test $(BUILD_FLAGS) --filter CrashTests
	$(MAKE) sdk-test
	$(MAKE) ui-test
	$(MAKE) slurm-test

# The official azure-batch SDKs, pinned, each in a venv created on first use (a stamp keeps reruns
# fast): 15.x (azure-core, api-version 2025-06-01) and 14.2.0 (msrest, as older az CLIs pin it).
PYTHON ?= python3
SDK_VENV ?= .venv-sdk
SDK_VERSION ?= 15.1.0
SDK14_VENV ?= .venv-sdk14
SDK14_VERSION ?= 14.2.0
SDK_STAMP := $(SDK_VENV)/.installed-azure-batch-$(SDK_VERSION)
SDK14_STAMP := $(SDK14_VENV)/.installed-azure-batch-$(SDK14_VERSION)

$(SDK_STAMP):
	@test -x $(SDK_VENV)/bin/python || $(PYTHON) -m venv $(SDK_VENV) || { echo "cannot create $(SDK_VENV): install python3-venv (Debian/Ubuntu)"; exit 1; }
	$(SDK_VENV)/bin/pip install -q --disable-pip-version-check 'azure-batch==$(SDK_VERSION)' 'pytest>=8'
	@touch $@

$(SDK14_STAMP):
	@test -x $(SDK14_VENV)/bin/python || $(PYTHON) -m venv $(SDK14_VENV) || { echo "cannot create $(SDK14_VENV): install python3-venv (Debian/Ubuntu)"; exit 1; }
	$(SDK14_VENV)/bin/pip install -q --disable-pip-version-check 'azure-batch==$(SDK14_VERSION)' 'pytest>=8'
	@touch $@

sdk-venv: $(SDK_STAMP) $(SDK14_STAMP) ## create the SDK venvs (.venv-sdk, .venv-sdk14) only when missing

# Built with --build-tests like `swift test`, so after `swift test` nothing is compiled again.
# The 15.x run talks HTTPS to a daemon with a self-signed certificate made at test time; the 14.2.0
# run stays on plain HTTP over loopback, so both ways of serving are covered without a third run.
sdk-test: deps sdk-venv ## run Tests/sdk with both official SDKs against a fresh `bookend serve` each (15.x over HTTPS)
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	BOOKEND_SDK_TLS=1 BOOKEND_BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bookend $(SDK_VENV)/bin/python -m pytest -v -p no:cacheprovider Tests/sdk
	BOOKEND_BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bookend $(SDK14_VENV)/bin/python -m pytest -v -p no:cacheprovider Tests/sdk

# The dashboard in a real browser: Debian's chromium and chromium-driver (installed when missing),
# driven by Selenium from PyPI in .venv-ui, against a fresh `bookend serve`. The phase fails, never
# skips, when Chromium cannot start. Screenshots of each page land in var/ui-screenshots/.
UI_VENV ?= .venv-ui
SELENIUM_VERSION ?= 4.51.0
UI_STAMP := $(UI_VENV)/.installed-selenium-$(SELENIUM_VERSION)

ui-deps: deps ## install chromium and chromium-driver (Debian) when missing, for the browser tests
	@missing=""; for p in chromium chromium-driver; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(UI_STAMP):
	@test -x $(UI_VENV)/bin/python || $(PYTHON) -m venv $(UI_VENV) || { echo "cannot create $(UI_VENV): install python3-venv (Debian/Ubuntu)"; exit 1; }
	$(UI_VENV)/bin/pip install -q --disable-pip-version-check 'selenium==$(SELENIUM_VERSION)' 'pytest>=8'
	@touch $@

ui-venv: $(UI_STAMP) ## create .venv-ui (Selenium, pytest) only when missing

ui-test: ui-deps ui-venv ## run Tests/ui: the dashboard in headless Chromium against a fresh `bookend serve` (screenshots in var/ui-screenshots)
	$(SWIFT) build $(BUILD_FLAGS) --product bookend
	BOOKEND_BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bookend $(UI_VENV)/bin/python -m pytest -v -p no:cacheprovider Tests/ui

# Debian's Slurm (22.05 on Debian 12) and munge, for the Slurm phase: a throw-away one-node cluster
# on loopback is started by the tests themselves (Tests/slurm/cluster.sh), never the system's.
slurm-deps: ## install slurmctld, slurmd, slurm-client and munge when missing
	@missing=""; for p in slurmctld slurmd slurm-client munge; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# Slurm-backed pools against a real Slurm (started and stopped by the tests, by pid) through the
# official SDK. They run, never skip: a cluster that cannot start fails the phase. Runs as root
# (slurmd and the task accounts need it).
slurm-test: deps slurm-deps sdk-venv ## run Tests/slurm: pools whose nodes are Slurm allocations, on a throw-away cluster
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	BOOKEND_BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bookend $(SDK_VENV)/bin/python -m pytest -v -p no:cacheprovider Tests/slurm

# Tasks per second through Slurm steps against `srun` of the same command in a shell loop, in one run.
bench-slurm: deps slurm-deps sdk-venv ## measure Bookend's tasks/s through Slurm steps against a plain srun loop
	$(SWIFT) build $(BUILD_FLAGS)
	BOOKEND_BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bookend $(SDK_VENV)/bin/python Tests/slurm/bench_slurm.py

# The Azure CLI, pinned, in its own venv (it is large: a few minutes to install; not needed by make test).
AZ_VENV ?= .venv-az
AZ_VERSION ?= 2.91.0
AZ_STAMP := $(AZ_VENV)/.installed-azure-cli-$(AZ_VERSION)
AZ_PORT ?= 8092

$(AZ_STAMP):
	@test -x $(AZ_VENV)/bin/python || $(PYTHON) -m venv $(AZ_VENV) || { echo "cannot create $(AZ_VENV): install python3-venv (Debian/Ubuntu)"; exit 1; }
	$(AZ_VENV)/bin/pip install -q --disable-pip-version-check 'azure-cli==$(AZ_VERSION)'
	@touch $@

az-venv: $(AZ_STAMP) ## install the Azure CLI into .venv-az (for `az batch` against the daemon)

az-demo: deps az-venv ## run docs/examples/az/run.sh with `az batch` against a fresh daemon on 127.0.0.1:$(AZ_PORT)
	$(SWIFT) build $(BUILD_FLAGS) --product bookend
	rm -rf var/az-demo && mkdir -p var
	@# As root, tasks run under their own accounts, which may not enter a clone under /root: their
	@# node folders then go to a fresh folder under /var/tmp (the sample does the same).
	@bin=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bookend; nodes=""; \
	if [ "$$(id -u)" = 0 ]; then nodes=$$(mktemp -d /var/tmp/bookend-az-demo-nodes.XXXXXX) && chmod 755 $$nodes; fi; \
	$$bin serve --data-dir var/az-demo $${nodes:+--nodes-dir $$nodes} --listen 127.0.0.1:$(AZ_PORT) & pid=$$!; \
	trap "kill $$pid 2>/dev/null; wait $$pid; [ -z \"$$nodes\" ] || rm -rf \"$$nodes\"" EXIT; \
	while [ ! -s var/az-demo/account.key ] || ! curl -sf http://127.0.0.1:$(AZ_PORT)/health >/dev/null; do \
		kill -0 $$pid 2>/dev/null || { echo "az-demo: bookend serve exited (its message is above)"; exit 1; }; sleep 0.2; \
	done; \
	AZURE_BATCH_ENDPOINT=http://127.0.0.1:$(AZ_PORT) AZURE_BATCH_ACCOUNT=bookend AZURE_BATCH_ACCESS_KEY=$$(cat var/az-demo/account.key) \
	AZ=$(AZ_VENV)/bin/az sh docs/examples/az/run.sh

serve: deps ## run the daemon on 127.0.0.1:8080 over $(DATA_DIR)
	$(SWIFT) build $(BUILD_FLAGS) --product bookend
	$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bookend serve --data-dir $(DATA_DIR)

demo: deps ## run the JobPrepRelease sample on two local nodes (fresh data dir in var/demo)
	$(SWIFT) build $(BUILD_FLAGS) --product bookend
	rm -rf $(DATA_DIR) && mkdir -p $(dir $(DATA_DIR))
	$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bookend sample job-prep-release --data-dir $(DATA_DIR)

release: deps ## build the release binary
	$(SWIFT) build -c release --product bookend

# `make install PREFIX=/usr DESTDIR=pkgroot` for packaging. The man page and the completions are
# generated by the binary just built, so they always match its commands and flags.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
install: release ## install the release binary, the systemd unit, the man page and completions under $(DESTDIR)$(PREFIX)
	@bin=$$($(SWIFT) build -c release --show-bin-path)/bookend; set -e; \
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(SYSTEMD_UNIT_DIR)" "$(DESTDIR)$(PREFIX)/share/man/man1" \
		"$(DESTDIR)$(PREFIX)/share/bash-completion/completions" "$(DESTDIR)$(PREFIX)/share/zsh/site-functions" \
		"$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d"; \
	install -m 0755 "$$bin" "$(DESTDIR)$(BINDIR)/bookend"; \
	sed 's|@BINDIR@|$(BINDIR)|g' contrib/systemd/bookend.service > "$(DESTDIR)$(SYSTEMD_UNIT_DIR)/bookend.service"; \
	chmod 0644 "$(DESTDIR)$(SYSTEMD_UNIT_DIR)/bookend.service"; \
	"$$bin" generate-manual > "$(DESTDIR)$(PREFIX)/share/man/man1/bookend.1"; \
	"$$bin" --generate-completion-script bash > "$(DESTDIR)$(PREFIX)/share/bash-completion/completions/bookend"; \
	"$$bin" --generate-completion-script zsh > "$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_bookend"; \
	"$$bin" --generate-completion-script fish > "$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/bookend.fish"; \
	echo "installed bookend under $(DESTDIR)$(PREFIX); unit: $(DESTDIR)$(SYSTEMD_UNIT_DIR)/bookend.service"

# Release build of the daemon, the benchmark and the clock-stamp program tasks run; results in var/bench.
bench: deps ## build in release mode and run the benchmarks (prints a table; JSON in var/bench/results.json)
	@# The SDK throughput runs the official Python SDK from .venv-sdk; without it that one figure is skipped.
	$(MAKE) sdk-venv || echo "bench: no .venv-sdk, the SDK throughput figure is skipped"
	$(SWIFT) build -c release --product bookend
	$(SWIFT) build -c release --product bookend-bench
	$(SWIFT) build -c release --product bench-stamp
	$$($(SWIFT) build -c release --show-bin-path)/bookend-bench --dir var/bench $(BENCH_FLAGS)

clean: ## remove build products and the demo data
	rm -rf .build var
