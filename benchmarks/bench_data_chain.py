"""Cost of the data chain as the corpus grows: time and peak memory per asset on 1k, 10k, 100k segments.

    python benchmarks/bench_data_chain.py --sizes 1000 10000 100000
    python benchmarks/bench_data_chain.py --sizes 200 1000          # a quick look
    python benchmarks/bench_data_chain.py --sizes 100000 --results output/bench_data_chain.json   # one size per run
    python benchmarks/bench_data_chain.py --data-dir /tmp/realdev      # a corpus of your own, cold (issue 15)


For each size, a corpus is generated under a temporary PIXEL_DATA_DIR: `--sizes` segments in the 8 style x quality
files (lognormal lengths around ~390 words, 35-3,700, resampled from the sentences of the sample corpus in data/,
with a sprinkle of exact duplicates and empty rows), the sample transcripts, counseling and CoT sets. Every data asset
(all but the `training` group) is then materialized one by one in dependency order, in this process, with a fresh
output folder and embedding cache. Printed per asset: wall seconds, peak resident memory during the asset, and how
that memory grew. A last table shows seconds per 1k segments per asset across sizes, so a cost that grows faster
than the data stands out (its per-1k figure rises with size). With --results FILE, each size's rows are merged
into FILE (JSON, a size run again replaces its rows) and the per-1k table covers every size in it, so the big sizes
can be run one at a time, on other days or machines of the same kind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from _corpus import sentence_pool  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # per-asset lines only, not every event
STYLES = ("therapeutic", "educational", "empathetic", "practical")
STYLE_SHARES = (0.55, 0.10, 0.15, 0.20)  # unbalanced like real corpora
SOURCES = ["Healing Minds with Dr. Lena Hart"] + [f"channel_{i:02d}" for i in range(60)]
EDUCATOR_SHARE = 0.3  # the main educator leads, as in real corpora, so raw_segments detects the voice source


# ------------------------------------------------------------------------------------------ corpus generation


def realistic_text(rng: random.Random, pool: list[str]) -> str:
    target = int(min(3700, max(35, rng.lognormvariate(5.966, 0.5))))  # median ~390 words (e^5.966)
    words: list[str] = []
    while len(words) < target:
        words.extend(rng.choice(pool).split())
    return " ".join(words[:target])


def generate_corpus(root: Path, n_segments: int, seed: int = 0, sample_dir: Path = REPO / "data") -> dict[str, int]:
    """Write a corpus of `n_segments` segments (+ the sample conversations and transcripts) under `root`."""
    rng = random.Random(seed)
    pool = sentence_pool(sample_dir, min_words=4, include_transcripts=False)
    seg_dir = root / "training_segments"
    seg_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[dict]] = {f"{s}_{q}_quality.json": [] for s in STYLES for q in ("high", "medium")}
    written: list[str] = []
    for i in range(n_segments):
        style = rng.choices(STYLES, STYLE_SHARES)[0]
        quality = rng.choice(("high", "medium"))
        if written and rng.random() < 0.01:  # exact repeats, as real exports contain
            text = rng.choice(written)
        else:
            text = f"{realistic_text(rng, pool)} ({i})"
            written.append(text)
        files[f"{style}_{quality}_quality.json"].append({
            "text": text, "style": style, "confidence": round(rng.uniform(0, 9.9), 2),
            "quality": round(rng.uniform(0.5, 1.0) if quality == "high" else rng.uniform(0.2, 0.8), 2),
            "source": SOURCES[0] if rng.random() < EDUCATOR_SHARE else rng.choice(SOURCES[1:]), "file": f"talk_{rng.randrange(max(1, n_segments // 8))}.txt",
        })
    for name, rows in files.items():
        (seg_dir / name).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    for folder in ("transcripts", "counseling", "cot"):
        if (sample_dir / folder).is_dir():
            shutil.copytree(sample_dir / folder, root / folder, dirs_exist_ok=True)
    return {"segments": n_segments, "segment_files": len(files)}


# ------------------------------------------------------------------------------------------ measurement
class PeakRss:
    """Samples this process's resident memory (VmRSS) every few milliseconds; `peak` since the last reset."""

    def __init__(self, every_s: float = 0.02):
        self.every_s = every_s
        self.peak = self.current()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def current() -> int:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self):
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self.current())

    def reset(self) -> int:
        now = self.current()
        self.peak = now
        return now

    def stop(self):
        self._stop.set()


def data_chain_assets():
    """(key, AssetsDefinition) of every non-training asset, in dependency order."""
    import dagster as dg

    from pixel_pipeline.definitions import defs

    graph = defs.get_repository_def().asset_graph
    order = [k for k in graph.toposorted_asset_keys if graph.get(k).group_name != "training" and graph.get(k).is_materializable]
    # The definitions as written (the repository's copies carry the default resources bound in).
    unbound = {key: a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) for key in a.keys}
    return [(k, unbound[k]) for k in order]


def resources_for(cache_dir: Path) -> dict:
    from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage

    return {"storage": PixelStorage(), "embedding_model": EmbeddingModel(cache_dir=str(cache_dir))}


def materialize_each(assets, resources, instance, rss: PeakRss, log=print) -> list[dict]:
    """Materialize assets one at a time (each reads its upstream Parquet from disk); time and memory per asset."""
    import dagster as dg

    rows = []
    for key, assets_def in assets:
        start_rss = rss.reset()
        start = time.perf_counter()
        result = dg.materialize(
            [assets_def], selection=[key], resources=resources, instance=instance, raise_on_error=False, run_config=QUIET
        )
        seconds = time.perf_counter() - start
        ok = result.success
        meta = {}
        if ok:
            mats = result.asset_materializations_for_node(assets_def.op.name) if hasattr(assets_def, "op") else []
            meta = mats[0].metadata if mats else {}
        row_count = meta.get("dagster/row_count")
        rows.append({
            "asset": key.to_user_string(), "ok": ok, "seconds": seconds, "peak_rss_mb": rss.peak / 2**20,
            "rss_growth_mb": (rss.peak - start_rss) / 2**20,
            "rows": getattr(row_count, "value", row_count),
        })
        log(f"    {key.to_user_string():<26} {'ok ' if ok else 'FAILED'} {seconds:8.1f} s  peak {rss.peak / 2**20:7.0f} MB", flush=True)
    return rows


def print_table(rows: list[dict], title: str) -> None:
    print(f"\n{title}")
    print("| asset | status | rows | seconds | peak RSS (MB) | RSS growth (MB) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['asset']} | {'ok' if r['ok'] else 'FAILED'} | {r['rows'] if r['rows'] is not None else ''} | "
              f"{r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['rss_growth_mb']:.0f} |")
    print(f"| **total** | | | {sum(r['seconds'] for r in rows):.1f} | {max(r['peak_rss_mb'] for r in rows):.0f} | |")


def load_results(path: Path | None) -> dict[int, list[dict]]:
    if not path or not path.exists():
        return {}
    return {int(size): rows for size, rows in json.loads(path.read_text(encoding="utf-8")).items()}


def merge_results(path: Path, size: int, rows: list[dict]) -> None:
    merged = load_results(path)
    merged[size] = rows
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({str(k): merged[k] for k in sorted(merged)}, indent=1), encoding="utf-8")


def print_per_1k(by_size: dict[int, list[dict]]) -> None:
    sizes = sorted(by_size)
    print("\nseconds per 1k segments (a figure that rises with size grows faster than the data)")
    print("| asset | " + " | ".join(f"{s:,}" for s in sizes) + " |")
    print("| --- |" + " ---: |" * len(sizes))
    assets = list(dict.fromkeys(r["asset"] for s in sizes for r in by_size[s]))
    for asset in assets:
        cells = []
        for s in sizes:
            row = next((r for r in by_size[s] if r["asset"] == asset), None)
            cells.append(f"{row['seconds'] / (s / 1000):.2f}" if row else "")
        print(f"| {asset} | " + " | ".join(cells) + " |")
    peaks = [f"{max(r['peak_rss_mb'] for r in by_size[s]):.0f}" for s in sizes]
    print("| peak RSS (MB) | " + " | ".join(peaks) + " |")


def run_corpus(data_dir: Path, out: Path | None, assets, rss: PeakRss) -> int:
    """One cold run on a given corpus: every data asset, a fresh output folder (no cache) unless `out` holds one."""
    import dagster as dg

    out = out or Path(tempfile.mkdtemp(prefix="pixel-bench-corpus-"))
    os.environ["PIXEL_DATA_DIR"] = str(data_dir.resolve())
    os.environ["PIXEL_OUTPUT_DIR"] = str(out.resolve())
    cold = not (out / "cache").exists()
    print(f"\n== {data_dir} -> {out} ({'cold: no cache' if cold else 'warm: cache present'})")
    start = time.perf_counter()
    with dg.instance_for_test() as instance:
        rows = materialize_each(assets, resources_for(out / "cache"), instance, rss)
    wall = time.perf_counter() - start
    print_table(rows, f"{data_dir.name} ({'cold' if cold else 'warm'}), wall {wall:.1f} s in one process")
    rss.stop()
    failed = [r["asset"] for r in rows if not r["ok"]]
    if failed:
        print(f"\nFAILED assets: {failed}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--keep", action="store_true", help="keep the generated corpora and outputs")
    parser.add_argument("--results", type=Path, help="JSON file to merge this run's rows into (per-1k table over all)")
    parser.add_argument("--data-dir", type=Path, help="run once on this corpus (PIXEL_DATA_DIR layout) instead of "
                        "generated sizes, with a fresh output folder and embedding cache (cold)")
    parser.add_argument("--out", type=Path, help="with --data-dir: the output folder (default: a temporary one)")
    args = parser.parse_args()

    import dagster as dg

    assets = data_chain_assets()
    print(f"data chain: {', '.join(k.to_user_string() for k, _ in assets)}")
    rss = PeakRss()
    if args.data_dir:
        return run_corpus(args.data_dir, args.out, assets, rss)
    by_size: dict[int, list[dict]] = {}
    for size in args.sizes:
        root = Path(tempfile.mkdtemp(prefix=f"pixel-bench-{size}-"))
        os.environ["PIXEL_DATA_DIR"] = str(root / "data")
        os.environ["PIXEL_OUTPUT_DIR"] = str(root / "output")
        t0 = time.perf_counter()
        info = generate_corpus(root / "data", size)
        print(f"\n== {size} segments ({info['segment_files']} files, generated in {time.perf_counter() - t0:.1f} s) under {root}")
        with dg.instance_for_test() as instance:
            by_size[size] = materialize_each(assets, resources_for(root / "output" / "cache"), instance, rss)
        print_table(by_size[size], f"{size} segments")
        if args.results:
            merge_results(args.results, size, by_size[size])
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    rss.stop()

    everything = {**load_results(args.results), **by_size} if args.results else by_size
    if len(everything) > 1:
        print_per_1k(everything)
    failed = [r["asset"] for rows in by_size.values() for r in rows if not r["ok"]]
    if failed:
        print(f"\nFAILED assets: {sorted(set(failed))}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
