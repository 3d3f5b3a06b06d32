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

## The README's screenshots (desktop, phone 390x844, dark) in docs/screenshots/: the app with
## the demo data in headless Chromium (tools/screenshots.py).
screenshots: install
	$(BIN)/python -m tools.screenshots --out $(CURDIR)/docs/screenshots

## Benchmarks (print numbers; not tests).
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
