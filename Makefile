# The two Quickstart commands (README.md): `make run` and `make test`. Both install first (idempotent).
VENV ?= .venv
PY := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV)/bin/python,$(VENV)/bin/python)

.PHONY: install run test ui clean

install:
	@bash scripts/install.sh

run: install
	$(PY) -m pixel_pipeline.cli run

test: install
	$(PY) -m pytest -q pixel_pipeline_tests

ui: install
	$(PY) -m pixel_pipeline.cli ui

clean:
	rm -rf output .dagster_home
