# Bookend — run `make help` for the targets.
SWIFT ?= swift
BUILD_FLAGS ?=
DATA_DIR ?= var/demo

.DEFAULT_GOAL := help

.PHONY: help deps build test demo release bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install the system packages Bookend needs (libsqlite3-dev, sqlite3) when missing
	@missing=""; for p in libsqlite3-dev sqlite3; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

build: deps ## build everything (debug)
	$(SWIFT) build $(BUILD_FLAGS)

test: deps ## run the whole test suite
	$(SWIFT) test $(BUILD_FLAGS)

demo: deps ## run the JobPrepRelease sample on two local nodes (fresh data dir in var/demo)
	$(SWIFT) build $(BUILD_FLAGS) --product bookend
	rm -rf $(DATA_DIR) && mkdir -p $(dir $(DATA_DIR))
	$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bookend sample job-prep-release --data-dir $(DATA_DIR)

release: deps ## build the release binary
	$(SWIFT) build -c release --product bookend

clean: ## remove build products and the demo data
	rm -rf .build var
