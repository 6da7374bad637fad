"""Dagster definitions for the splits domain (filled in by its issue)."""

import dagster as dg

defs = dg.Definitions()
