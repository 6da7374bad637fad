"""The static model distilled from MiniLM (core.static_embeddings) against MiniLM itself, per use, on a real corpus.

    python benchmarks/bench_static_embeddings.py --data-dir ../shared/corpora/real_segments_dev --cache output/cache

Printed, in one run on the same texts:
- speed: texts/s of each encoder on the same uncached segments;
- the style classifier (ingest.style), MiniLM windows vs the static model over the whole text, at several
  temperatures: agreement of the predicted style, agreement of the style that picks the expert (`auto`: the
  prediction at confidence >= 0.7, else the given label), and each one's accuracy against the given labels;
- off_domain (curation.domain): correlation of the margins and agreement of the decision at the default margin.
A use switches to the static model only where its agreement here is high enough (docs/speed.md says which).
`--cache` reuses MiniLM vectors already computed by a run (the timing pass never uses it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_segments(data_dir: Path) -> pd.DataFrame:
    from pixel_pipeline.ingest import segments as seg

    settings = seg.SegmentSettings()
    files, _ = seg.list_segment_inputs(data_dir, settings)
    frames = [r.rows for r in (seg.load_input_file(f, settings) for f in files) if r.rows is not None and len(r.rows)]
    return pd.concat(frames, ignore_index=True)


def texts_per_second(encoder, texts: list[str]) -> float:
    start = time.perf_counter()
    encoder.encode(texts)
    return len(texts) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--cache", type=Path, help="an output folder's cache/ to reuse MiniLM vectors from")
    parser.add_argument("--timing-texts", type=int, default=200)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.05, 0.03, 0.02, 0.01])
    args = parser.parse_args()

    from pixel_pipeline.core.embeddings import Embedder, resolve_model_path
    from pixel_pipeline.core.static_embeddings import StaticEmbedder
    from pixel_pipeline.curation import domain
    from pixel_pipeline.ingest.style import StyleClassifier, StyleClassifierSettings, choose_style

    rows = load_segments(args.data_dir)
    texts = rows["text"].tolist()
    given = rows["style_given"]
    print(f"{len(texts)} segments from {args.data_dir}")
    t0 = time.perf_counter()
    static = StaticEmbedder(resolve_model_path(None))
    static.folder
    print(f"static model: {static.folder} ({time.perf_counter() - t0:.1f} s to build or find)")
    minilm = Embedder(cache_dir=args.cache)

    sample = texts[: args.timing_texts]
    uncached = Embedder()
    uncached.encode(sample[:8])  # load and compile outside the timing
    ml_rate, st_rate = texts_per_second(uncached, sample), texts_per_second(static, sample)
    print(f"\n| encoder | texts/s ({len(sample)} segments, uncached) |\n| --- | ---: |\n"
          f"| MiniLM ({uncached.backend}, {uncached.precision}) | {ml_rate:.1f} |\n| static (model2vec recipe) | {st_rate:.0f} |"
          f"\n\nstatic / MiniLM: {st_rate / ml_rate:.0f}x")

    def pick(pred, conf):
        return choose_style(given, pd.Series(pred), pd.Series(conf), "auto", 0.7)

    def accuracy(style):
        mask = given.notna()
        return float((pd.Series(style)[mask] == given[mask]).mean())

    ml_pred, ml_conf = StyleClassifier(minilm).predict(texts)
    ml_style = pick(ml_pred, ml_conf)
    print("\nstyle classifier (reference: MiniLM, 180-word windows, temperature 0.05)")
    print("| encoder | temperature | predicted = MiniLM's | expert style = MiniLM's | predictions taken (conf >= 0.7) "
          "| predicted = given | expert style = given |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| MiniLM | 0.05 | 1.000 | 1.000 | {np.mean(ml_conf >= 0.7):.3f} | {accuracy(ml_pred):.3f} | {accuracy(ml_style):.3f} |")
    for temperature in args.temperatures:
        clf = StyleClassifier(static, StyleClassifierSettings(temperature=temperature))
        pred, conf = clf.predict(texts)
        style = pick(pred, conf)
        print(f"| static | {temperature} | {np.mean(np.array(pred) == np.array(ml_pred)):.3f} | "
              f"{np.mean(style.to_numpy() == ml_style.to_numpy()):.3f} | {np.mean(conf >= 0.7):.3f} | "
              f"{accuracy(pred):.3f} | {accuracy(style):.3f} |")

    print("\noff_domain margins (no centroid)")
    margins = {}
    for name, enc in (("MiniLM", minilm), ("static", static)):
        d = domain.domain_scores(enc.encode(texts), enc.encode(list(domain.DOMAIN_DESCRIPTIONS)),
                                 enc.encode(list(domain.OFF_TOPIC_DESCRIPTIONS)))
        margins[name] = d["score"].to_numpy(float)
    r = np.corrcoef(margins["MiniLM"], margins["static"])[0, 1]
    agree = np.mean((margins["MiniLM"] < 0) == (margins["static"] < 0))
    print(f"Pearson r {r:.3f}; same decision at margin 0: {agree:.3f}; off-domain share MiniLM "
          f"{np.mean(margins['MiniLM'] < 0):.3f}, static {np.mean(margins['static'] < 0):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
