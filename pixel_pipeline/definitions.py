"""The code location: every domain's definitions merged, plus the shared resources.

Each domain module under pixel_pipeline/defs/ exposes `defs = dg.Definitions(...)`; this file only merges them and
names who owns each group, so the UI says whom to ask about an asset.
"""

from __future__ import annotations

import warnings

import dagster as dg

from pixel_pipeline.defs import automation, curation, ingestion, prompts, splits, training
from pixel_pipeline.defs.resources import default_resources

OWNERS_BY_GROUP = {
    "ingestion": ["team:data-curation"],
    "curation": ["team:data-curation"],
    "prompts": ["team:data-curation"],
    "splits": ["team:data-curation"],
    "training": ["team:ml-training"],
}


def _with_owners(spec: dg.AssetSpec) -> dg.AssetSpec:
    if spec.owners or spec.group_name not in OWNERS_BY_GROUP:
        return spec
    return spec.replace_attributes(owners=OWNERS_BY_GROUP[spec.group_name])


def build_definitions() -> dg.Definitions:
    merged = dg.Definitions.merge(
        ingestion.defs,
        curation.defs,
        prompts.defs,
        splits.defs,
        training.defs,
        automation.defs,
        dg.Definitions(resources=default_resources()),
    )
    # map_asset_specs is marked preview in Dagster 1.13; the version is pinned exactly, so its warning is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return merged.map_asset_specs(func=_with_owners)


# The only Definitions object at module scope (Dagster refuses a module with two).
defs = build_definitions()
