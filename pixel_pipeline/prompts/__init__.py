"""Plain domain logic (prompts); no Dagster imports."""
