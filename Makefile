# The two commands: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The integration session's own namespace, so the tests never touch the default pipeline.
TEST_NAMESPACE ?= test_
# Each pytest phase writes a JUnit file here; tests/phases.py sums them into its closing table.
RESULTS := .clickstack/test-results

.PHONY: demo test test-full lint unit integration integration-full disk-full secure secure-full jars venv browser bench \
	lab dashboard down clean java-vectors differential lock

# Every package the venv installs is pinned with its sha256 in the lock (`make lock` writes it), so a
# tampered or substituted download fails the install instead of running. pip checks no hash of what
# it fetches for an isolated build (pypa/pip#11974), so nothing is built in isolation: pip and
# setuptools come first, from the lock; then the rest, PySpark (an sdist only) built with that
# setuptools; then clicklib, editable, which has no file to hash: from no index, so nothing more
# can be fetched, and with its extras, so a dependency pyproject.toml names and the lock lacks
# fails here by name (run `make lock`).
LOCK := requirements.lock
PIP_INSTALL = $(BIN)/pip install --quiet --disable-pip-version-check
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	awk '/^(pip|setuptools)==/ {on = 1} on {print; if (!/\\$$/) on = 0}' $(LOCK) | \
		$(PIP_INSTALL) --require-hashes --no-deps -r /dev/stdin
	$(PIP_INSTALL) --require-hashes --no-build-isolation --check-build-dependencies -r $(LOCK)
	$(PIP_INSTALL) --no-index --no-build-isolation --check-build-dependencies -e '.[test,notebooks,batch]'
	touch $(STAMP)

venv: $(STAMP)

# Writes the lock again from pyproject.toml and requirements-build.in. Run it after changing a
# dependency in either (`make venv` names what the lock lacks), and to take updates: pins already
# in the lock are kept unless LOCK_ARGS says otherwise, `make lock LOCK_ARGS=--upgrade` for all or
# LOCK_ARGS='-P pandas' for one. pip-compile resolves for the Python it runs on: run it on
# Python 3.11, what CI runs (every file of a pinned release is hashed, any platform's). pip-tools
# comes pinned and hashed (requirements-tools.lock) into a throwaway venv: another version may
# resolve or write the lock differently.
lock:
	@tools=$$(mktemp -d) && trap 'rm -rf "$$tools"' EXIT && \
	$(PYTHON) -m venv "$$tools" && \
	"$$tools/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r requirements-tools.lock && \
	"$$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
		--extra test --extra notebooks --extra batch $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml requirements-build.in

jars: $(STAMP)
	$(BIN)/clicklib stack resolve

# Headless Chromium renders the analysis report in a test (Debian's package; root installs it).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Unit tests on both cores: no services, a minute.
unit: $(STAMP)
	$(BIN)/pytest tests/unit -n 2 -q --junitxml=$(RESULTS)/unit.xml

# Maven with -C (--strict-checksums): a download that does not match the repository's checksum
# fails the build instead of a warning, as in clicklib/stack/jars.py.
MVN = mvn -B -q -C

# The Flink event check's own tests, against the shared vectors that pytest holds Python to:
# run every time, so a changed vector is checked on both sides.
java-vectors: $(STAMP)
	$(MVN) -f ksql/functions/pom.xml test

# Java's verdict against Python's on some 100,000 generated messages (tests/vectors/differential.py):
# truncations, byte damage, every field of every type, deep and long values, UTF-8 edge cases.
# The same Maven run also runs every other test of the event check (java-vectors): one JVM start.
differential: $(STAMP)
	@corpus=$$(mktemp) && trap 'rm -f "$$corpus"' EXIT && \
	$(BIN)/python tests/vectors/differential.py "$$corpus" && \
	CLICKLIB_DIFFERENTIAL="$$corpus" $(MVN) -f ksql/functions/pom.xml test

# Tests each session leaves to the other. A graceful Connect restart under load runs with logins
# only: the default session kills Connect with -9 under load (tests/faults), a harder case of the
# same. A replayed workload changes no row whoever logs in: the default session checks it alone.
SECURE_ONLY = tests/integration/test_pipeline.py::test_restarting_connect_under_load_loses_and_duplicates_nothing
DEFAULT_ONLY = tests/integration/test_pipeline.py::test_producing_the_same_workload_again_changes_no_row

# Tests wait for every partition to fall idle before the last windows of a run are final: a
# shorter idle timeout than the default (3 min) keeps those waits short. The fault suite runs
# with the default, which is what it must hold up (tests/faults).
TEST_IDLE_TIMEOUT = 30 s

# Two tiers (README, "Tests"). `make test`, what CI runs: unit tests first, then one pytest session
# on the local stack (the integration tests, the notebook series run once by papermill, and from
# the fault matrix kill -9 of the TaskManager and of Cassandra and a pipeline down/up), then the
# secure profile's refusals of anonymous and wrong-password clients. `make test-full` adds every
# test marked `full`: the whole fault matrix, a second run of the notebooks that send traffic, and
# the secure session's pipeline tests, and the disk-full test (disk-full, below); it records its
# result in .clickstack/test-full.json. Each
# notebook runs under one runner, papermill (tests/integration/test_notebooks.py), which also
# checks the figures it records: nbval would only run the same cells again.
# tests/phases.py times each phase and prints the table and total at the end.
test:
	@$(PYTHON) tests/phases.py venv lint unit jars browser differential integration secure

test-full:
	@$(PYTHON) tests/phases.py --record .clickstack/test-full.json \
		venv lint unit jars browser differential integration-full disk-full secure-full

# One pytest session on the stack: the stack fixture comes up once for every test and goes down at
# the end when it was not running before, even when a test failed. The fault suite comes last: a
# sparse run (the shop test's one visitor) whose windows are closed minutes after the suite's
# kill -9 of the TaskManager has been seen to wait in vain for its close marks (under study).
# `integration` leaves out the tests marked `full`; `integration-full` runs them all.
integration: SELECT = -m "not full"
integration integration-full: jars browser
	@$(BIN)/clicklib stack status >/dev/null 2>&1; was_up=$$?; \
	CLICKLIB_NAMESPACE=$(TEST_NAMESPACE) CLICKLIB_IDLE_TIMEOUT="$(TEST_IDLE_TIMEOUT)" $(BIN)/pytest tests/integration tests/faults \
		--deselect $(SECURE_ONLY) --durations=30 --junitxml=$(RESULTS)/$@.xml $(SELECT); rc=$$?; \
	if [ $$was_up -ne 0 ]; then $(BIN)/clicklib stack down >/dev/null; fi; exit $$rc

# The secure profile (CLICKLIB_SECURE=1) in a stack of its own: a fresh home beside the usual one
# (sharing its jars) and ports 10000 above the usual ones. `secure`: its login tests that need no
# pipeline; `secure-full`: all of them, and the pipeline's exactness tests and the stack's round
# trips again with every client logging in.
SECURE_HOME = $(CURDIR)/.clickstack-secure
SECURE_ENV = CLICKLIB_SECURE=1 CLICKLIB_HOME=$(SECURE_HOME) CLICKLIB_NAMESPACE=sec_ CLICKLIB_IDLE_TIMEOUT="$(TEST_IDLE_TIMEOUT)" \
	CLICKLIB_KAFKA_PORT=19092 CLICKLIB_KAFKA_CONTROLLER_PORT=19093 CLICKLIB_CASSANDRA_PORT=19042 \
	CLICKLIB_CASSANDRA_STORAGE_PORT=17000 CLICKLIB_CONNECT_PORT=18083 CLICKLIB_FLINK_REST_PORT=18081 \
	CLICKLIB_FLINK_RPC_PORT=16123 CLICKLIB_SQL_GATEWAY_PORT=18082 CLICKLIB_SCHEMA_REGISTRY_PORT=18085
secure: SECURE_TESTS = tests/secure -m "not full"
secure-full: SECURE_TESTS = tests/secure tests/integration/test_pipeline.py tests/integration/test_stack_roundtrip.py \
	tests/integration/test_web_pages.py \
	--deselect $(DEFAULT_ONLY)
secure secure-full: jars
	@jars=$$($(BIN)/python -c 'from clicklib.settings import get_settings; print(get_settings().home / "jars")'); \
	rm -rf $(SECURE_HOME) && mkdir -p $(SECURE_HOME) && ln -s "$$jars" $(SECURE_HOME)/jars; \
	$(SECURE_ENV) $(BIN)/pytest $(SECURE_TESTS) --durations=5 --junitxml=$(RESULTS)/$@.xml; rc=$$?; \
	$(SECURE_ENV) $(BIN)/clicklib stack down >/dev/null; \
	exit $$rc

# The disk-full test (tests/disk) on a stack of its own, whose home is a filesystem of a fixed size
# that the test mounts (root only) and fills: ports 20000 above the usual ones, and disk bounds
# set against that size (1024 MB).
DISK_HOME = $(CURDIR)/.clickstack-disk
DISK_ENV = CLICKLIB_HOME=$(DISK_HOME) CLICKLIB_NAMESPACE=disk_ CLICKLIB_DISK_WARN_MB=600 CLICKLIB_DISK_REFUSE_MB=300 \
	CLICKLIB_KAFKA_PORT=29092 CLICKLIB_KAFKA_CONTROLLER_PORT=29093 CLICKLIB_CASSANDRA_PORT=29042 \
	CLICKLIB_CASSANDRA_STORAGE_PORT=27000 CLICKLIB_CONNECT_PORT=28083 CLICKLIB_FLINK_REST_PORT=28081 \
	CLICKLIB_FLINK_RPC_PORT=26123 CLICKLIB_SQL_GATEWAY_PORT=28082 CLICKLIB_SCHEMA_REGISTRY_PORT=28085 \
	CLICKLIB_COLLECTOR_PORT=28090 CLICKLIB_COLLECTOR_UDP_PORT=28091
disk-full: jars
	@jars=$$($(BIN)/python -c 'from clicklib.settings import get_settings; print(get_settings().home / "jars")'); \
	umount --lazy $(DISK_HOME) 2>/dev/null; rm -rf $(DISK_HOME) && mkdir -p $(DISK_HOME); \
	CLICKLIB_DISK_TEST_JARS="$$jars" $(DISK_ENV) $(BIN)/pytest tests/disk --durations=5 --junitxml=$(RESULTS)/$@.xml; rc=$$?; \
	$(DISK_ENV) $(BIN)/clicklib stack down >/dev/null; umount --lazy $(DISK_HOME) 2>/dev/null; rm -rf $(DISK_HOME); \
	exit $$rc

demo: jars
	$(BIN)/clicklib demo

bench: jars
	$(BIN)/python -m bench.run

# JupyterLab over notebooks/ on 127.0.0.1:8888 (token login on), and the live dashboard on 127.0.0.1:8866.
lab: $(STAMP)
	$(BIN)/clicklib lab

dashboard: $(STAMP)
	$(BIN)/clicklib dashboard

down: $(STAMP)
	$(BIN)/clicklib stack down

clean: down
	rm -rf .clickstack reports
