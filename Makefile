# nid-gateway: `make run` starts the demo, `make test` runs lint + the test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Exact versions of every dependency (all extras, build requirements): `make lock` writes it.
LOCK   := requirements/constraints.txt

.PHONY: run test lint bench crash-test venv lock clean policy-schema-code

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml or the lock changes; the lock pins every version.
$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test,bench,otel]'
	touch $(STAMP)

venv: $(STAMP)

# Re-resolve the lock after editing dependencies in pyproject.toml. Pins that still fit are
# kept; `make lock LOCK_ARGS=--upgrade` moves everything to the newest allowed versions.
LOCK_ARGS ?=
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4,<8'
	CUSTOM_COMPILE_COMMAND='make lock' $(BIN)/pip-compile --quiet --strip-extras \
	  --allow-unsafe --all-build-deps --no-emit-index-url --no-emit-find-links \
	  --extra test --extra bench --extra otel $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml

# After editing gateway/policy/schema.json: write the schema's Python code again
# (gateway/policy/schema_check.py; tests/policy/test_schema_check.py checks it is current).
policy-schema-code: $(STAMP)
	$(BIN)/python -m gateway.policy.schema_code

PORT ?= 8080

run: $(STAMP)
	$(BIN)/nid-gateway demo --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	bash bench/run.sh

# Reliable delivery's crash test (tests/delivery/crash.py) 20 times in a row: kill -9 under
# load, restart, every accepted notification delivered once. Stops at the first failure.
crash-test: $(STAMP)
	$(BIN)/python -m tests.delivery.crash --runs 20

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
