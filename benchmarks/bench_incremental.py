"""Full run vs incremental run after one new transcript (target: incremental <= 10 % of full).

    python benchmarks/bench_incremental.py --segments 3000

A corpus of `--segments` segments (bench_data_chain.generate_corpus: realistic lengths, unbalanced styles, many
sources) plus the sample transcripts but one is generated under a temporary PIXEL_DATA_DIR. Then, in this process
and on one Dagster instance:
  1. full run: every data asset (all but the `training` group) materialized in dependency order, cold caches;
  2. the held-back transcript is dropped into transcripts/; the `new_input_files` sensor ticks (one partition, one
     run request), `input_file_segments` materializes that partition, and the data chain runs again, as the
     `data_chain_after_input_files` sensor would launch it.
Each data chain run is one Dagster run of all its assets (as the `data_chain` job runs them). Printed: seconds per
asset (step durations) for both runs, the wall-clock totals and their ratio, and the rows each run produced.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data_chain import QUIET, data_chain_assets, generate_corpus, resources_for  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HELD_BACK = "still_standing_ep102_sleep_in_recovery.txt"
# The generated corpus is made of the sample's sentences, so it runs with the sample's own run config (the concept
# fallback on, training-size minimums of 5): the exports then have pairs, and every asset is timed.
CHAIN_CONFIG = {**QUIET, **yaml.safe_load((REPO / "data" / "run_config.yaml").read_text(encoding="utf-8"))}


def run_chain(assets, resources, instance) -> tuple[float, list[dict]]:
    """One run of the whole data chain; (wall seconds, per-asset step seconds and row counts)."""
    import dagster as dg

    start = time.perf_counter()
    result = dg.materialize([a for _, a in assets], resources=resources, instance=instance, raise_on_error=False,
                            run_config=CHAIN_CONFIG)
    wall = time.perf_counter() - start
    durations = {e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.get_step_success_events()}
    rows = []
    for key, assets_def in assets:
        step = assets_def.op.name
        mats = result.asset_materializations_for_node(step) if step in durations else []
        count = mats[0].metadata.get("dagster/row_count") if mats else None
        rows.append({"asset": key.to_user_string(), "ok": step in durations, "seconds": durations.get(step, float("nan")),
                     "rows": getattr(count, "value", count)})
    return wall, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=3000)
    parser.add_argument("--new-transcript", type=Path, default=REPO / "data" / "transcripts" / HELD_BACK)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import dagster as dg

    from pixel_pipeline.defs.automation import input_file_segments, new_input_files

    root = Path(tempfile.mkdtemp(prefix="pixel-bench-incremental-"))
    data = root / "data"
    os.environ["PIXEL_DATA_DIR"] = str(data)
    os.environ["PIXEL_OUTPUT_DIR"] = str(root / "output")
    os.environ["PIXEL_SENSOR_SETTLE_SECONDS"] = "0"  # the benchmark writes files itself: no need to wait
    generate_corpus(data, args.segments)
    (data / "transcripts" / args.new_transcript.name).unlink(missing_ok=True)
    assets = data_chain_assets()
    resources = resources_for(root / "output" / "cache")
    print(f"corpus: {args.segments} segments + {len(list((data / 'transcripts').glob('*.txt')))} transcripts under {data}")

    with dg.instance_for_test() as instance:
        def tick(cursor):
            with dg.build_sensor_context(cursor=cursor, instance=instance, resources={"storage": resources["storage"]}) as ctx:
                result = new_input_files(ctx)
            for request in result.dynamic_partitions_requests:
                if isinstance(request, dg.AddDynamicPartitionsRequest):
                    instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
            return result

        baseline = tick(None)  # the sensor's view of the corpus before the full run (the full run covers it all)
        print("full run (cold caches) ...", flush=True)
        full_s, full = run_chain(assets, resources, instance)
        print(f"    {full_s:.1f} s", flush=True)

        shutil.copyfile(args.new_transcript, data / "transcripts" / args.new_transcript.name)
        print(f"incremental run after dropping transcripts/{args.new_transcript.name} ...", flush=True)
        start = time.perf_counter()
        result = tick(baseline.cursor)
        keys = [r.partition_key for r in result.run_requests]
        print(f"    sensor: {len(keys)} run request(s): {keys}")
        per_file = []
        for key in keys:
            t0 = time.perf_counter()
            ok = dg.materialize([input_file_segments], partition_key=key, resources=resources, instance=instance, run_config=QUIET).success
            per_file.append({"asset": "input_file_segments (new partition)", "ok": ok, "seconds": time.perf_counter() - t0, "rows": None})
        chain_s, chain = run_chain(assets, resources, instance)
        incremental = per_file + chain
        incremental_s = time.perf_counter() - start
        print(f"    {incremental_s:.1f} s", flush=True)

    full_by = {r["asset"]: r for r in full}
    print("\n| asset | full (s) | incremental (s) | rows full | rows incremental |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in incremental:
        f = full_by.get(r["asset"], {})
        print(f"| {r['asset']} | {f.get('seconds', 0.0):.1f} | {r['seconds']:.1f} | "
              f"{'' if f.get('rows') is None else f['rows']} | {'' if r['rows'] is None else r['rows']} |")
    ratio = incremental_s / full_s if full_s else float("nan")
    print(f"\nfull run: {full_s:.1f} s   incremental run (sensor tick + new partition + data chain): {incremental_s:.1f} s   "
          f"ratio {ratio:.1%}  (target <= 10 %: {'met' if ratio <= 0.10 else 'NOT met'})")
    failed = [r["asset"] for r in [*full, *incremental] if not r["ok"]]
    if failed:
        print(f"FAILED: {sorted(set(failed))}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
