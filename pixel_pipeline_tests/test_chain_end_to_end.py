"""The whole asset chain on the embedded sample data: what `make run` does, as a specification.

One materialization of every asset (the implicit global job), then the contracts of docs/CONTRACTS.md are checked
from the files alone: the exports, `rejected.jsonl`, the per-dataset accounting against an independent count of the
input files, and adapters that load back into PEFT.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pixel_pipeline.core.settings import CORPUS_RUN_CONFIG
from pixel_pipeline_tests.conftest import SAMPLE_DATA_DIR

pytestmark = pytest.mark.slow

METADATA_SNAPSHOT = Path(__file__).parent / "snapshots" / "metadata_keys.json"
TRAINING_ASSETS = ("lora_stage1_counseling", "lora_stage2_reasoning", "lora_stage3_voice")


def _count_conversation_inputs(folder: Path) -> int:
    """Records in counseling/ or cot/ counted straight from the files (not through the pipeline's loaders)."""
    total = 0
    for path in sorted(folder.glob("*")):
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as fh:
                total += sum(1 for _ in csv.DictReader(fh))
        elif path.suffix == ".jsonl":
            total += sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        elif path.suffix == ".json":
            total += len(json.loads(path.read_text(encoding="utf-8")))
    return total


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("chain_output")
    data = tmp_path_factory.mktemp("chain_data") / "data"
    shutil.copytree(SAMPLE_DATA_DIR, data)
    mp = pytest.MonkeyPatch()
    mp.setenv("PIXEL_DATA_DIR", str(data))
    mp.setenv("PIXEL_OUTPUT_DIR", str(out))
    try:
        from pixel_pipeline.definitions import defs

        job = defs.resolve_implicit_global_asset_job_def()
        run_config = yaml.safe_load((data / CORPUS_RUN_CONFIG).read_text(encoding="utf-8"))  # what `make run` passes
        result = job.execute_in_process(run_config=run_config, instance=dg.DagsterInstance.ephemeral(),
                                        raise_on_error=False)
        yield result, data, out
    finally:
        mp.undo()


def test_every_asset_materializes_and_no_error_check_fails(chain_run):
    result, _, _ = chain_run
    assert result.success, [str(e) for e in result.all_events if e.is_failure]
    failed = [
        (str(e.asset_key.to_user_string()), e.check_name, e.metadata)
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert failed == []


def test_exports_follow_the_shared_message_format(chain_run):
    _, _, out = chain_run
    exports = out / "exports"
    seen_datasets = set()
    for split in ("train", "validation"):
        lines = (exports / "messages" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        assert lines, f"{split} export is empty"
        for line in lines:
            record = json.loads(line)
            roles = [m["role"] for m in record["messages"]]
            assert roles[-2:] == ["user", "assistant"] and set(roles) <= {"system", "user", "assistant"}
            meta = record["metadata"]
            seen_datasets.add(meta["dataset"])
            id_key = "segment_id" if meta["dataset"] == "segments" else "record_id"
            assert len(meta[id_key]) == 16
    assert seen_datasets == {"segments", "counseling", "cot"}


def test_rows_in_equal_rows_exported_plus_rows_rejected(chain_run):
    """docs/CONTRACTS.md accounting, for every dataset, against counts taken from the input files themselves."""
    _, data, out = chain_run
    import pandas as pd

    exported_ids: dict[str, set[str]] = collections.defaultdict(set)
    exported_rows: collections.Counter[str] = collections.Counter()
    for split_file in (out / "exports" / "messages").glob("*.jsonl"):
        for line in split_file.read_text(encoding="utf-8").splitlines():
            meta = json.loads(line)["metadata"]
            if meta.get("augmented"):
                continue
            exported_rows[meta["dataset"]] += 1
            exported_ids[meta["dataset"]].add(meta.get("segment_id") or meta.get("record_id"))
    rejected: collections.Counter[str] = collections.Counter()
    for line in (out / "exports" / "rejected.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        assert rec["stage"] and rec["reasons"], rec
        rejected[rec["dataset"]] += 1

    segment_rows = sum(len(json.loads(p.read_text(encoding="utf-8"))) for p in (data / "training_segments").glob("*.json"))
    raw = pd.read_parquet(out / "tables" / "raw_segments.parquet")
    transcript_segments = int((raw["origin"] == "transcript").sum())
    expected = {
        "segments": segment_rows + transcript_segments,
        "counseling": _count_conversation_inputs(data / "counseling"),
        "cot": _count_conversation_inputs(data / "cot"),
    }
    for dataset, rows_in in expected.items():
        assert exported_rows[dataset] == len(exported_ids[dataset]), f"{dataset}: an input row was exported twice"
        assert rows_in == exported_rows[dataset] + rejected[dataset], (dataset, rows_in, exported_rows[dataset], rejected[dataset])


def test_stage_adapters_load_back_into_peft(chain_run):
    result, _, _ = chain_run
    from peft import PeftConfig

    for asset in TRAINING_ASSETS:
        materializations = result.asset_materializations_for_node(asset)
        assert materializations, f"{asset} was not materialized"
        meta = materializations[-1].metadata
        adapter_path = Path(meta["adapter_path"].value)
        assert (adapter_path / "adapter_config.json").exists()
        assert (adapter_path / "adapter_model.safetensors").exists()
        assert PeftConfig.from_pretrained(str(adapter_path)).peft_type.value == "LORA"
        assert meta["base_model"].value


def test_materialization_metadata_keys_match_the_snapshot(chain_run):
    """The metadata keys each asset and each check reports are part of what users read in the UI: renaming one is a
    deliberate change (PIXEL_UPDATE_SNAPSHOT=1 rewrites pixel_pipeline_tests/snapshots/metadata_keys.json)."""
    result, _, _ = chain_run
    current: dict[str, list[str]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        current[materialization.asset_key.to_user_string()] = sorted(materialization.metadata)
    for evaluation in result.get_asset_check_evaluations():
        current[f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"] = sorted(evaluation.metadata)
    current = dict(sorted(current.items()))
    if os.environ.get("PIXEL_UPDATE_SNAPSHOT") == "1":
        METADATA_SNAPSHOT.write_text(json.dumps(current, indent=1) + "\n", encoding="utf-8")
    assert current == json.loads(METADATA_SNAPSHOT.read_text(encoding="utf-8"))
