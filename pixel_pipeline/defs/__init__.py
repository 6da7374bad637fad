"""The thin Dagster layer: assets, checks, resources, sensors and schedules over the plain domain modules."""
