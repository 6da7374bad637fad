"""Every Dagster Config says the same default as the pure settings (or function) it configures, knob by knob,
and turns into those settings through the one helper, defs.settings.settings_from.

A knob is configured in the UI through a `dg.Config` and used by a pure module through its settings dataclass or
keyword arguments; the Config reads its default from the pure side, and these tests keep it so. Each pair below is
compared on every field name they share (same name = same concept), so a new knob is covered as soon as it exists.
"""

# No `from __future__ import annotations`: the Dagster Config below is resolved at definition time.
import dataclasses

import dagster as dg
import pytest

from pixel_pipeline.core.embeddings import Embedder
from pixel_pipeline.curation import filters, review
from pixel_pipeline.curation.curate import CurationSettings
from pixel_pipeline.curation.dedup import NearDupSettings
from pixel_pipeline.curation.pairs import DedupSettings
from pixel_pipeline.defs import curation, ingestion, prompts, resources, splits, training
from pixel_pipeline.defs.settings import keyword_defaults, settings_from
from pixel_pipeline.ingest import audit, conversations, segments
from pixel_pipeline.prompts.checks import PromptThresholds
from pixel_pipeline.prompts.pipeline import PromptSettings
from pixel_pipeline.prompts.rules import PromptRules
from pixel_pipeline.splits import sizes
from pixel_pipeline.splits.assign import SplitSettings, assign_splits
from pixel_pipeline.splits.exports import write_exports
from pixel_pipeline.training.evaluation import evaluate_training, evaluation_verdicts
from pixel_pipeline.training.router import train_router_from_exports
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
    return keyword_defaults(target)


def config_defaults(config_cls) -> dict:
    return {name: field.get_default(call_default_factory=True) for name, field in config_cls.model_fields.items()
            if not field.is_required()}


def comparable(value):
    return list(value) if isinstance(value, (tuple, list, frozenset, set)) else value


PAIRS = [
    (ingestion.RawSegmentsConfig, segments.SegmentSettings),
    (ingestion.CounselingConversationsConfig, conversations.ConversationSettings),
    (ingestion.CotConversationsConfig, conversations.ConversationSettings),
    (ingestion.AuditedSchemaConfig, audit.AuditSettings),
    (curation.CurationRulesConfig, CurationSettings),
    (curation.CuratedSegmentsConfig, CurationSettings),
    (curation.CuratedConversationsConfig, CurationSettings),
    (curation.DeduplicatedPairsConfig, DedupSettings),
    (curation.ReviewSampleConfig, review.build_sample),
    (prompts.GeneratedPromptsConfig, PromptSettings),
    (prompts.GeneratedPromptsConfig, PromptThresholds),
    (splits.SplitsConfig, SplitSettings),
    (splits.SplitsConfig, assign_splits),
    (splits.ExportsConfig, write_exports),
    (splits.ExportsConfig, sizes.SizeRule),
    (training.LoraRunConfig, TrainingConfig),
    (training.LoraTraining, TrainingConfig),
    (training.EvaluationConfig, evaluate_training),
    (training.EvaluationConfig, evaluation_verdicts),
    (training.RouterConfig, train_router_from_exports),
    (resources.EmbeddingModel, Embedder),
]
# Shared names whose Config default is "empty: resolved at run time" (an env var, then the pure default), on purpose.
RESOLVED_AT_RUN_TIME = {
    training.LoraTraining: {"base_model"},
    resources.EmbeddingModel: {"model_name_or_path", "cache_dir", "device", "precision", "backend"},
}


@pytest.mark.parametrize(("config_cls", "pure"), PAIRS,
                         ids=[f"{c.__name__}-{getattr(p, '__name__', p)}" for c, p in PAIRS])
def test_a_dagster_config_and_its_pure_settings_share_their_defaults(config_cls, pure):
    ours, theirs = config_defaults(config_cls), pure_defaults(pure)
    shared = sorted(set(ours) & set(theirs) - RESOLVED_AT_RUN_TIME.get(config_cls, set()))
    assert shared, f"{config_cls.__name__} and {getattr(pure, '__name__', pure)} share no knob: wrong pair"
    differ = {k: (ours[k], theirs[k]) for k in shared if comparable(ours[k]) != comparable(theirs[k])}
    assert not differ, f"{config_cls.__name__} vs {pure.__name__}: (config, pure) defaults differ: {differ}"


def test_the_curation_rules_thresholds_default_to_what_curation_settings_default_to():
    """The rule modules' threshold dataclasses and CurationSettings are one source: the settings build them equal."""
    settings = CurationSettings()
    assert settings.garbled_thresholds() == filters.GarbledThresholds()
    assert settings.repetition_thresholds() == filters.RepetitionThresholds()
    assert settings.housekeeping_thresholds() == filters.HousekeepingThresholds()
    assert DedupSettings().near() == NearDupSettings()
    assert PromptSettings().rules == PromptRules()


@dataclasses.dataclass(frozen=True)
class _Knobs:
    names: tuple[str, ...] = ()
    tags: list[str] = dataclasses.field(default_factory=list)
    limit: int = 1
    only_pure: str = "its own default"


class _KnobsConfig(dg.Config):
    names: list[str] = ["a", "b"]
    tags: list[str] = ["x"]
    limit: int = 5
    only_config: int = 3


def test_settings_from_passes_the_shared_names_tuples_where_the_settings_want_them_and_overrides_win():
    knobs = settings_from(_KnobsConfig(), _Knobs, limit=9)
    assert knobs == _Knobs(names=("a", "b"), tags=["x"], limit=9, only_pure="its own default")
    assert isinstance(knobs.names, tuple) and isinstance(knobs.tags, list)


def test_settings_from_reads_string_annotations_of_settings_modules_with_postponed_annotations():
    settings = ingestion.RawSegmentsConfig(required_fields=["text"], min_words=7).settings()
    assert settings.required_fields == ("text",) and settings.min_words == 7
    assert settings.max_words == segments.SegmentSettings.max_words


def test_keyword_defaults_are_a_functions_defaulted_parameters():
    def fn(a, b=2, *, c="three", d):
        return a, b, c, d

    assert keyword_defaults(fn) == {"b": 2, "c": "three"}
