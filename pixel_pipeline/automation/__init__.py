"""Pure helpers of the automation domain (no dagster import): input-folder scanning and the sensor cursor."""
