"""Dagster definitions for the curation domain (filled in by its issue)."""

import dagster as dg

defs = dg.Definitions()
