"""Plain domain logic (curation); no Dagster imports."""
