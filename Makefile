# The two commands a newcomer needs: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVICE_PROJECTS := $(wildcard services/*/pyproject.toml)
SERVICE_DIRS := $(patsubst %/pyproject.toml,%,$(SERVICE_PROJECTS))
TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
export TEST_POSTGRES_URL

.PHONY: install lock lint format run demo test test-faults bench bench-check bench-scoring scaleout browser loadgen clean

install: $(STAMP)

$(STAMP): requirements/dev.lock libs/common/pyproject.toml libs/devbroker/pyproject.toml $(SERVICE_PROJECTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/dev.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e libs/common $(addprefix -e ,$(SERVICE_DIRS))
	@# after crm-common: replacing an older crm-common that still declared `crm-broker` would delete its script
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e libs/devbroker
	@touch $(STAMP)

## make lock: requirements/dev.lock (every version pinned, with hashes) from requirements/dev.in and the pyproject.toml
## files; versions already in the lock are kept (UPGRADE="--upgrade" or "--upgrade-package NAME" to move them).
LOCAL_PACKAGES := crm-common crm-devbroker $(foreach d,$(SERVICE_DIRS),crm-$(notdir $(d)))
lock: install
	$(BIN)/uv pip compile requirements/dev.in --universal --python-version 3.11 --generate-hashes --quiet \
	  $(addprefix --no-emit-package ,$(LOCAL_PACKAGES)) --custom-compile-command "make lock" \
	  -o requirements/dev.lock $(UPGRADE)

## make lint: formatting, lint rules and types (configuration in pyproject.toml); `make format` fixes what it can.
lint: install
	$(BIN)/ruff format --check --diff .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make run: broker + every service and worker under supervisord (a process that exits is restarted), SQLite under
## var/ (or PROFILE_DATABASE_URL=... per service), migrations, demo data into an empty installation, URLs. Ctrl-C stops all gracefully.
run: install
	$(BIN)/python scripts/devrun.py

## make demo: add the demo data to the installation that `make run` is running (demo customers only).
demo: install
	$(BIN)/python scripts/demo_seed.py

## make test: its own broker and databases; PostgreSQL is required in CI and used whenever reachable.
test: install browser
	@$(BIN)/python scripts/check_postgres.py || { \
	  if [ -n "$$CI" ]; then echo "FATAL: PostgreSQL not reachable at $$TEST_POSTGRES_URL" >&2; exit 3; fi; \
	  echo "WARNING: PostgreSQL not reachable at $$TEST_POSTGRES_URL: running the SQLite half only" >&2; }
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

## make test-faults: the slow fault-injection tests (broker outage of 30 s, rebalance under load, acceptance run).
test-faults: install
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

## Headless Chromium for the console test (Debian package; skipped with a message where it cannot be installed).
browser:
	@{ [ -x /usr/bin/chromium ] && dpkg -s fonts-wqy-zenhei >/dev/null 2>&1; } || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null) \
	    || echo "WARNING: could not install chromium; the browser test will be skipped" >&2; }

## wrk drives the HTTP benchmarks from a second process; without it bench/loadgen.py (httpx) is the bottleneck.
loadgen:
	@command -v wrk >/dev/null 2>&1 || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
	    || echo "WARNING: could not install wrk; HTTP benchmarks fall back to bench/loadgen.py" >&2; }

bench: install loadgen
	$(BIN)/python bench/run_all.py

## make bench-check: the quick benchmarks compared with bench/results/baseline.json (committed); a figure 15% worse is flagged (exit 1).
bench-check: install loadgen
	$(BIN)/python bench/check.py

bench-scoring: install
	$(BIN)/python bench/scoring_bench.py

scaleout: install
	$(BIN)/python bench/scaleout.py

clean:
	rm -rf var test-output .pytest_cache
