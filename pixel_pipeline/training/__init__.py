"""Plain domain logic (training); no Dagster imports."""
