"""Plain domain logic (splits); no Dagster imports."""
