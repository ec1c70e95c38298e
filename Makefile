# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the test suite needs (installed only when run as root with apt-get available).
TEST_DEBS := postgresql redis-server dovecot-imapd chromium

.PHONY: run test lint typecheck imports system-packages clean lock venv-run

# The venv holds exactly one of the lock's sets (requirements/): it is rebuilt from scratch when that set
# changes, so a fresh machine and an old one install the same packages. `make lock` refreshes the lock.
LOCK_RUN := requirements/build.txt requirements/run.txt
LOCK_DEV := requirements/build.txt requirements/dev.txt
PIP_LOCKED := --quiet --disable-pip-version-check --require-hashes --no-deps
PIP_COMPILE := pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-find-links --upgrade

define fresh_venv
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_LOCKED) $(foreach f,$(1),-r $(f))
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
endef

$(VENV)/.installed-run: $(LOCK_RUN) pyproject.toml
	$(call fresh_venv,$(LOCK_RUN))
	touch $@

$(VENV)/.installed-dev: $(LOCK_DEV) pyproject.toml
	$(call fresh_venv,$(LOCK_DEV))
	touch $@

# `make run` uses the dev venv when it is current (it holds the runtime set too), else builds the runtime one.
venv-run:
	@if [ -f $(VENV)/.installed-dev ] && [ -z "$$(find $(LOCK_DEV) pyproject.toml -newer $(VENV)/.installed-dev)" ]; \
	then :; else $(MAKE) --no-print-directory $(VENV)/.installed-run; fi

run: venv-run
	$(BIN)/switchboard migrate
	$(BIN)/switchboard serve --development

# Refresh the lock deliberately (new releases, or a dependency added to pyproject.toml); commit the result.
lock:
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock && $(VENV)-lock/bin/pip install --quiet pip-tools
	cd requirements && ../$(VENV)-lock/bin/$(PIP_COMPILE) -o build.txt build.in
	cd requirements && ../$(VENV)-lock/bin/$(PIP_COMPILE) -o run.txt ../pyproject.toml
	cd requirements && ../$(VENV)-lock/bin/$(PIP_COMPILE) --extra dev -o dev.txt ../pyproject.toml
	rm -rf $(VENV)-lock

system-packages:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then \
			echo "installing Debian packages:$$missing"; \
			(apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || \
			 (apt-get update -q >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $$missing >/dev/null)); \
		fi; \
	else echo "not root: skipping Debian packages ($(TEST_DEBS)); tests that need them will skip"; fi

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check inbox channels tests
	$(BIN)/ruff format --check inbox channels

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

test: $(VENV)/.installed-dev system-packages lint typecheck imports
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(VENV)-lock .pytest_cache .mypy_cache .ruff_cache
