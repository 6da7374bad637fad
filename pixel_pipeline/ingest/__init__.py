"""Plain domain logic (ingest); no Dagster imports."""
