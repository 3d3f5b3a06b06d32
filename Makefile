# Eye-SCREAM: one command to run, one to test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run run-scaled test lint format bench screenshots clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

install: $(BIN)/.installed

## Set up and serve the product on http://$(HOST):$(PORT) (embedded mode).
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## The scaled topology on this host (PostgreSQL and Redis on 127.0.0.1; docs/operations.md):
## migrations, then WEB daphne on PORT.., SCORERS scoring workers, Celery worker and beat.
run-scaled: install
	VENV=$(VENV) PORT=$(or $(SCALED_PORT),8001) deploy/run-scaled.sh

## Lint, the layering contract (pyproject.toml), then the whole test suite.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Browser tests that also refresh the README's screenshots in docs/screenshots/.
screenshots: install
	EYESCREAM_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/dashboard/test_browser_live.py

## Benchmarks (print numbers; not tests).
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
