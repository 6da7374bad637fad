"""Builders of synthetic inputs for tests and benchmarks (never imported by the pipeline itself): a split corpus,
training exports in the export layout, a prompt corpus."""
