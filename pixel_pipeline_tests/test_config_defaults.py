"""Every Dagster Config says the same default as the pure settings (or function) it configures, knob by knob.

A knob is configured in the UI through a `dg.Config` and used by a pure module through its settings dataclass or
keyword arguments; when both write a default, a change to one must not leave the other behind. Each pair below is
compared on every field name they share (same name = same concept), so a new knob is covered as soon as it exists.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from pixel_pipeline.curation.curate import CurationSettings
from pixel_pipeline.curation.pairs import DedupSettings
from pixel_pipeline.defs import curation, ingestion, prompts, splits, training
from pixel_pipeline.ingest import audit, conversations, segments
from pixel_pipeline.prompts.pipeline import PromptSettings
from pixel_pipeline.splits.assign import assign_splits
from pixel_pipeline.training.trainer import TrainingConfig


def pure_defaults(target) -> dict:
    """Field or keyword defaults of a settings dataclass or a function."""
    if dataclasses.is_dataclass(target):
        out = {}
        for f in dataclasses.fields(target):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        return out
    return {name: p.default for name, p in inspect.signature(target).parameters.items()
            if p.default is not inspect.Parameter.empty}


def config_defaults(config_cls) -> dict:
    return {name: field.get_default(call_default_factory=True) for name, field in config_cls.model_fields.items()
            if not field.is_required()}


def comparable(value):
    return list(value) if isinstance(value, (tuple, list, frozenset, set)) else value


PAIRS = [
    (ingestion.RawSegmentsConfig, segments.SegmentSettings),
    (ingestion.CounselingConversationsConfig, conversations.ConversationSettings),
    (ingestion.AuditedSchemaConfig, audit.AuditSettings),
    (curation.CurationRulesConfig, CurationSettings),
    (curation.DeduplicatedPairsConfig, DedupSettings),
    (prompts.GeneratedPromptsConfig, PromptSettings),
    (splits.SplitsConfig, assign_splits),
    (training.LoraRunConfig, TrainingConfig),
]


@pytest.mark.parametrize(("config_cls", "pure"), PAIRS, ids=[c.__name__ for c, _ in PAIRS])
def test_a_dagster_config_and_its_pure_settings_share_their_defaults(config_cls, pure):
    ours, theirs = config_defaults(config_cls), pure_defaults(pure)
    shared = sorted(set(ours) & set(theirs))
    assert shared, f"{config_cls.__name__} and {getattr(pure, '__name__', pure)} share no knob: wrong pair"
    differ = {k: (ours[k], theirs[k]) for k in shared if comparable(ours[k]) != comparable(theirs[k])}
    assert not differ, f"{config_cls.__name__} vs {pure.__name__}: (config, pure) defaults differ: {differ}"
