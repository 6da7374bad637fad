"""Dagster definitions for the prompts domain (filled in by its issue)."""

import dagster as dg

defs = dg.Definitions()
