"""Dagster definitions for the training domain (filled in by its issue)."""

import dagster as dg

defs = dg.Definitions()
