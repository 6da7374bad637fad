"""The code location: every domain's definitions merged, plus the shared resources.

Each domain module under pixel_pipeline/defs/ exposes `defs = dg.Definitions(...)`; this file only merges them.
"""

from __future__ import annotations

import dagster as dg

from pixel_pipeline.defs import automation, curation, ingestion, prompts, splits, training
from pixel_pipeline.defs.resources import default_resources

defs = dg.Definitions.merge(
    ingestion.defs,
    curation.defs,
    prompts.defs,
    splits.defs,
    training.defs,
    automation.defs,
    dg.Definitions(resources=default_resources()),
)
