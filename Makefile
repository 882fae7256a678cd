# The two commands: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint unit integration jars venv down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

jars: $(STAMP)
	$(BIN)/clicklib stack resolve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: jars
	$(BIN)/pytest tests/integration

test: lint jars
	$(BIN)/pytest

demo: jars
	$(BIN)/clicklib demo

down: $(STAMP)
	$(BIN)/clicklib stack down

clean: down
	rm -rf .clickstack
