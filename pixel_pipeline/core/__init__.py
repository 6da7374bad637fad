"""Plain helpers shared by every domain module (no Dagster imports here)."""
