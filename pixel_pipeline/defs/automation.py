"""Automation: new input files are processed alone, the corpus-wide chain follows; nightly and weekly refreshes.

Two Definitions live here, because `dagster asset materialize -m pixel_pipeline.definitions --select '*'` (the
main command of docs/CONTRACTS.md) refuses any selection that contains a partitioned asset without `--partition`:

- `defs` (merged into the main code location `pixel_pipeline`): the `data_chain` and `training_refresh` jobs, the
  `nightly_data_chain` and `weekly_training_refresh` schedules, and the `data_chain_after_input_files` sensor, which
  launches one `data_chain` run after input files were processed or deleted. Everything here is unpartitioned.
- `incremental_defs` (its own code location `pixel_pipeline_incremental`, a second entry in workspace.yaml): the
  per-file asset `input_file_segments`, one dynamic partition per input file version (`<name>@<sha256[:16]>`), and
  the `new_input_files` sensor that adds a partition per new or changed file and requests a run for just it.

`input_file_segments` runs the ingest module's per-file path with raw_segments' own settings and cache, so when the
chain follows, raw_segments finds every file in its per-file cache and only combines; embeddings, language and
prompt caches (content-hash keyed) make the later assets touch only the new segments. See docs/automation.md.
"""

import os
from typing import Any

import dagster as dg

from pixel_pipeline.automation.checks import (
    CHECK_FILE_READABLE,
    CHECK_RECORD_ACCOUNTING,
    input_file_metadata,
    input_file_verdicts,
)
from pixel_pipeline.automation.per_file import kept_rows, changed_since_seen, find_input_file, per_file_table
from pixel_pipeline.automation.scanning import (
    DEFAULT_SETTLE_SECONDS,
    decode_cursor,
    parse_partition_key,
    plan_tick,
)
from pixel_pipeline.core.io import write_parquet
from pixel_pipeline.core.settings import SEGMENTS_DIR, TRANSCRIPTS_DIR, PipelinePaths
from pixel_pipeline.defs.ingestion import RawSegmentsConfig
from pixel_pipeline.defs.metadata import materialize_result
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage, default_resources
from pixel_pipeline.ingest import segments as seg
from pixel_pipeline.ingest.cache import FileCache
from pixel_pipeline.ingest.style import build_style_classifier

INCREMENTAL_GROUP = "incremental"
INPUT_FILES_PARTITIONS = "pixel_input_files"
INPUT_FILE_SEGMENTS = dg.AssetKey("input_file_segments")
TRAINING_GROUP = "training"
SENSOR_INTERVAL_SECONDS = 30
SETTLE_SECONDS_ENV_VAR = "PIXEL_SENSOR_SETTLE_SECONDS"
SCHEDULE_TIMEZONE_ENV_VAR = "PIXEL_SCHEDULE_TIMEZONE"
PER_FILE_RUN_TAG = "pixel/per_file_run"  # on every run the new_input_files sensor requests
IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]

input_files_partitions = dg.DynamicPartitionsDefinition(name=INPUT_FILES_PARTITIONS)


# ---------------------------------------------------------------------------------------------------------------
# Per-file asset (code location `pixel_pipeline_incremental`)


def _input_file(context: dg.AssetExecutionContext, paths: PipelinePaths, settings, name: str) -> seg.InputFile:
    """The partition's file as the ingest module lists it; gone since the sensor saw it fails the run."""
    files, notes = seg.list_segment_inputs(paths.data_dir, settings, SEGMENTS_DIR, TRANSCRIPTS_DIR)
    for note in notes:
        context.log.warning(note)
    item = find_input_file(files, name)
    if item is None:
        raise dg.Failure(
            description=f"{name} is no longer under {paths.data_dir} (deleted or renamed after the sensor saw it); "
            "the sensor removes its partition at its next tick.",
        )
    return item


@dg.asset(
    key=INPUT_FILE_SEGMENTS,
    partitions_def=input_files_partitions,
    group_name=INCREMENTAL_GROUP,
    kinds={"python", "parquet"},
    owners=["team:automation"],
    description=(
        "One input file (training_segments/*.json or transcripts/*.txt) validated, cut and style-scored on its own, "
        "one dynamic partition per file version (`<name>@<sha256 prefix>`). Fills raw_segments' per-file cache, so "
        "the corpus-wide chain that follows only combines. Launched by the `new_input_files` sensor."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_RECORD_ACCOUNTING,
            asset=INPUT_FILE_SEGMENTS,
            blocking=True,
            description="Rows in this file (counted while parsing) = rows kept + rows rejected.",
        ),
        dg.AssetCheckSpec(
            CHECK_FILE_READABLE,
            asset=INPUT_FILE_SEGMENTS,
            description="The file parsed (valid UTF-8, valid JSON list for segment files); if not, raw_segments "
            "rejects it with the reason and the other files still load.",
        ),
    ],
)
def input_file_segments(
    context: dg.AssetExecutionContext, config: RawSegmentsConfig, storage: PixelStorage, embedding_model: EmbeddingModel
) -> dg.MaterializeResult:
    paths = storage.paths
    name, digest = parse_partition_key(context.partition_key)
    settings = config.settings()
    item = _input_file(context, paths, settings, name)
    classifier = build_style_classifier(config.style_encoder, embedding_model.embedder(storage),
                                        embedding_model.static_embedder())
    cache = FileCache(paths.cache_dir / "ingest", "segments") if config.use_file_cache else None
    results, cache_stats = seg.ingest_segment_files([item], settings, classifier, cache, context.log.info)
    result, rows = results[0], kept_rows(results[0])
    table = write_parquet(rows, per_file_table(paths.output_dir, context.partition_key))
    changed = changed_since_seen(name, item.path.read_bytes(), digest)
    if changed:
        context.log.warning(changed)
    return materialize_result(
        input_file_metadata(item.path, table, result, rows, cache_stats, classifier.embedder.stats),
        input_file_verdicts(name, result, kept=len(rows)),
    )


def _settle_seconds() -> float:
    raw = os.environ.get(SETTLE_SECONDS_ENV_VAR, "")
    try:
        return float(raw) if raw else DEFAULT_SETTLE_SECONDS
    except ValueError:
        return DEFAULT_SETTLE_SECONDS


@dg.sensor(
    name="new_input_files",
    target=[input_file_segments],
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Watches PIXEL_DATA_DIR/transcripts/*.txt and training_segments/*.json. Each settled new or changed file "
        "gets a dynamic partition `<name>@<sha256[:16]>` and one run of input_file_segments for just it; partitions "
        "of replaced or deleted files are removed (deletions are recorded as an observation, which triggers the "
        "corpus refresh). Files still growing between ticks, or with temporary names (.part, .tmp, ~, .swp, "
        f"dotfiles), wait. Settle time: {SETTLE_SECONDS_ENV_VAR} (default {DEFAULT_SETTLE_SECONDS:.0f} s)."
    ),
)
def new_input_files(context: dg.SensorEvaluationContext, storage: PixelStorage) -> dg.SensorResult:
    paths = storage.paths
    previous, problem = decode_cursor(context.cursor)
    if problem:
        context.log.warning(problem)
    plan = plan_tick(paths.data_dir, previous, settle_seconds=_settle_seconds())
    context.log.info(f"new_input_files: {plan.summary()} under {paths.data_dir}")
    for state in plan.to_run:
        if state.utf8_valid is False:
            context.log.warning(f"{state.name} is not valid UTF-8: its run will the rejects it with the reason")
    for name, reason in plan.unreadable:
        context.log.warning(f"{name} could not be read this tick ({reason}); retrying next tick")
    requests: list[Any] = []
    to_run = plan.to_run
    if to_run:
        requests.append(dg.AddDynamicPartitionsRequest(INPUT_FILES_PARTITIONS, [s.partition_key for s in to_run]))
    stale = [k for k in plan.stale_partition_keys if k not in {s.partition_key for s in to_run}]
    if stale:
        requests.append(dg.DeleteDynamicPartitionsRequest(INPUT_FILES_PARTITIONS, stale))
        for key in stale:  # the per-file tables mirror the current partitions
            per_file_table(paths.output_dir, key).unlink(missing_ok=True)
    events = []
    if plan.deleted:
        events.append(
            dg.AssetObservation(
                asset_key=INPUT_FILE_SEGMENTS,
                description=f"{len(plan.deleted)} input files deleted; the corpus-wide chain drops their rows on refresh",
                metadata={"deleted_files": dg.MetadataValue.json([s.name for s in plan.deleted])},
            )
        )
    runs = [
        dg.RunRequest(run_key=s.run_key, partition_key=s.partition_key, tags={PER_FILE_RUN_TAG: "true", "pixel/input_file": s.name})
        for s in to_run
    ]
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=requests,
        asset_events=events,
        cursor=plan.cursor.encode(),
        skip_reason=None if (runs or requests or events) else dg.SkipReason(plan.summary()),
    )


incremental_defs = dg.Definitions(
    assets=[input_file_segments],
    sensors=[new_input_files],
    resources=default_resources(),
)


# ---------------------------------------------------------------------------------------------------------------
# Corpus-wide refreshes (main code location `pixel_pipeline`)

data_chain_job = dg.define_asset_job(
    "data_chain",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(TRAINING_GROUP),
    description="Every data asset (ingestion -> curation -> prompts -> dedup -> splits -> exports), training excluded. "
    "Content-hash caches make an unchanged corpus cheap and a new file cost only its own segments.",
    # One process for the whole chain: the embedding model, the tagger and the static model load once instead of once
    # per step, and no step pays a Python start-up (each asset and check still shows on its own in the UI). The steps
    # are a chain and the embedding passes use every core already, so parallel steps bought nothing.
    executor_def=dg.in_process_executor,
)
training_job = dg.define_asset_job(
    "training_refresh",
    selection=dg.AssetSelection.groups(TRAINING_GROUP),
    description="Every training asset (staged LoRA, experts, router) on the current exports.",
)


def _schedule_timezone() -> str:
    return os.environ.get(SCHEDULE_TIMEZONE_ENV_VAR) or "UTC"


nightly_data_chain = dg.ScheduleDefinition(
    name="nightly_data_chain",
    job=data_chain_job,
    cron_schedule="0 2 * * *",
    execution_timezone=_schedule_timezone(),
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="02:00 every night: re-run the corpus-wide data assets (dedup, splits, exports) so deletions, "
    "config changes and anything the sensors missed are folded in. Off by default; turn it on in the UI.",
)
weekly_training_refresh = dg.ScheduleDefinition(
    name="weekly_training_refresh",
    job=training_job,
    cron_schedule="0 4 * * 0",
    execution_timezone=_schedule_timezone(),
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Sunday 04:00: retrain the LoRA stages, experts and router on the latest exports (after the "
    "nightly data refresh). Off by default; turn it on in the UI.",
)


def _latest_input_file_event_id(instance: dg.DagsterInstance, after_storage_id: int | None) -> tuple[int | None, int]:
    """(highest storage id, number of events) of input_file_segments materializations/observations after the cursor."""
    latest: int | None = None
    count = 0
    records_filter = dg.AssetRecordsFilter(asset_key=INPUT_FILE_SEGMENTS, after_storage_id=after_storage_id)
    for fetch in (instance.fetch_materializations, instance.fetch_observations):
        records = fetch(records_filter, limit=1000).records
        count += len(records)
        for record in records:
            latest = record.storage_id if latest is None else max(latest, record.storage_id)
    return latest, count


@dg.sensor(
    name="data_chain_after_input_files",
    job=data_chain_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="After input_file_segments partitions materialize (or files are deleted), and once no per-file run is "
    "still queued or running, launch one data_chain run for all of them (run_key = the newest event's storage id).",
)
def data_chain_after_input_files(context: dg.SensorEvaluationContext):
    after = int(context.cursor) if context.cursor and context.cursor.isdigit() else None
    latest, count = _latest_input_file_event_id(context.instance, after)
    if latest is None:
        return dg.SkipReason("no input file processed or deleted since the last data_chain request")
    busy = context.instance.get_runs_count(dg.RunsFilter(statuses=IN_PROGRESS, tags={PER_FILE_RUN_TAG: "true"}))
    if busy:  # one chain run after the whole batch of new files, not one per file
        return dg.SkipReason(f"{count} input file events waiting; {busy} per-file runs still in progress")
    context.update_cursor(str(latest))
    return dg.RunRequest(run_key=f"input-files-through-{latest}", tags={"pixel/input_file_events": str(count)})


defs = dg.Definitions(
    jobs=[data_chain_job, training_job],
    schedules=[nightly_data_chain, weekly_training_refresh],
    sensors=[data_chain_after_input_files],
)
