# The two Quickstart commands (README.md): `make run` and `make test`. Both install first (idempotent).
VENV ?= .venv
PY := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV)/bin/python,$(VENV)/bin/python)

.PHONY: install run run-smollm2 test ui clean

install:
	@bash scripts/install.sh

run: install
	$(PY) -m pixel_pipeline.cli run

# The whole chain on the sample with the real pretrained base model, short CPU training runs (issue 14).
run-smollm2: install
	PIXEL_BASE_MODEL=smollm2-135m-instruct $(PY) -m pixel_pipeline.cli run --config benchmarks/smollm2_sample.yaml

test: install
	$(PY) -m pytest -q pixel_pipeline_tests

ui: install
	$(PY) -m pixel_pipeline.cli ui

clean:
	rm -rf output .dagster_home
