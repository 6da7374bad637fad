#!/usr/bin/env python3
"""Train the curation quality classifier from the reading labels, report cross-validated figures, save it.

    python scripts/train_quality_classifier.py --corpus ../shared/corpora/real_segments_dev           # CV figures
    python scripts/train_quality_classifier.py --corpus ../shared/corpora/real_segments_dev --save    # + write model

The features are computed exactly as the chain computes them (curate.segment_evidence over the whole corpus, so the
off_domain centroid is the corpus's own voice sources), then the labelled rows are taken. Cross-validation is
stratified 5-fold, repeated; the decision that is measured is the chain's: a segment is rejected when any named rule
fires OR the classifier's P(reject) reaches the threshold. The model is saved to pixel_pipeline/curation/quality_model/
(safetensors + JSON card with the figures). The labels: labels/real_segments_dev.jsonl (docs/labelling.md).
"""
from __future__ import annotations

import argparse
import collections
import datetime
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pixel_pipeline.core.embeddings import Embedder  # noqa: E402
from pixel_pipeline.core.ids import content_id  # noqa: E402
from pixel_pipeline.core.records import choose_voice_sources  # noqa: E402
from pixel_pipeline.curation import quality  # noqa: E402
from pixel_pipeline.curation.curate import SEGMENT_RULES, CurationSettings, segment_evidence  # noqa: E402

REASONS = ("garbled", "repetitive", "housekeeping", "off_domain", "religious", "fragment", "harmful")
C_GRID = (0.03, 0.1, 0.3, 1.0)
THRESHOLDS = tuple(float(round(x, 2)) for x in np.arange(0.2, 0.81, 0.05))


def load_labels(path: Path) -> pd.DataFrame:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return pd.DataFrame(rows)


def read_segment_corpus(corpus: Path) -> pd.DataFrame:
    """The corpus's training_segments/*.json as raw_segments would hold them (valid rows of the 8-file format)."""
    rows = []
    for path in sorted((corpus / "training_segments").glob("*.json")):
        for r in json.loads(path.read_text(encoding="utf-8")):
            rows.append({"segment_id": content_id(r["text"]), "text": r["text"], "style": r["style"],
                         "quality": float(r["quality"]), "source": r["source"], "file": r["file"]})
    return pd.DataFrame(rows)


def evidence_table(corpus: Path, cache_dir: Path, max_seq_length: int | None = None
                   ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(one row per segment id: hand features + rules_fired, embedding matrix, voice sources) over the whole corpus,
    kept in cache_dir by corpus content, feature code and embedding window, so re-fitting with other settings takes
    seconds. max_seq_length: the embedding window (None: the model's own, as the chain runs)."""

    from pixel_pipeline.curation.curate import rules_code_version

    raw = read_segment_corpus(corpus)
    key = hashlib.sha256("".join(raw["segment_id"]).encode() + rules_code_version().encode()
                         + quality.code_version().encode() + (str(max_seq_length) if max_seq_length else "").encode()
                 ).hexdigest()[:16]
    cached = cache_dir / f"quality_evidence_{key}.parquet"
    if cached.exists():
        table = pd.read_parquet(cached)
        vectors = np.stack(table.pop("vector").to_numpy())
        return table, vectors, np.asarray(json.loads(table.attrs.get("voice", "[]")) or
                                          choose_voice_sources(collections.Counter(raw["source"])).sources)
    voice = choose_voice_sources(collections.Counter(raw["source"])).sources
    settings = CurationSettings(domain_reference_sources=voice, quality_classifier=False)
    ev = segment_evidence(raw, settings, embed=Embedder(cache_dir=cache_dir, max_seq_length=max_seq_length).encode)
    hand = pd.DataFrame(ev.hand_features())
    fired = np.column_stack([ev.rules[r]["fired"].to_numpy(bool) for r in SEGMENT_RULES if r in ev.rules])
    hand["rules_fired"] = fired.any(axis=1)
    hand["segment_id"] = ev.df["segment_id"].to_numpy()
    hand = hand.drop_duplicates("segment_id")
    keep = hand.index.to_numpy()
    hand, vectors = hand.reset_index(drop=True), ev.vectors[keep]
    cache_dir.mkdir(parents=True, exist_ok=True)
    hand.assign(vector=list(vectors)).to_parquet(cached)
    return hand, vectors, np.asarray(voice)


RESCUABLE = {"head": {"garbled", "housekeeping", "repetitive", "fragment"},
             "tail": {"garbled", "housekeeping", "repetitive", "fragment"},
             "middle": {"garbled", "housekeeping", "repetitive"}}


def passage_rescued(labels: pd.DataFrame, hand: pd.DataFrame) -> np.ndarray:
    """Rejects that a reader said have a good part standing on its own (bad_part head / tail / middle), whose
    reasons shaping can fix, and where shaping did cut at that place: the shaped response is what the reader would
    keep. This is the target of the passage-level decision (docs/curation.md)."""
    out = np.zeros(len(labels), dtype=bool)
    talk = hand["shaping_channel_talk_sentences"].to_numpy() > 0
    cut = {"head": (hand["shaping_head_share"].to_numpy() > 0) | talk,
           "tail": (hand["shaping_tail_share"].to_numpy() > 0) | talk,
           "middle": (hand[["shaping_repeated_sentences", "shaping_loops_collapsed", "shaping_channel_talk_sentences",
                            "shaping_garbled_sentences"]].to_numpy() > 0).any(axis=1)}
    for i, r in labels.iterrows():
        part = r.get("bad_part")
        if r["label"] == "reject" and part in RESCUABLE and set(r["reasons"]) <= RESCUABLE[part]:
            out[i] = bool(cut[part][i])
    return out


def cross_validate(hand: list[dict], vectors: np.ndarray, y: np.ndarray, rules_fired: np.ndarray, c: float,
                   folds: int, repeats: int) -> np.ndarray:
    """Out-of-fold P(reject), averaged over repeats of a stratified k-fold split."""
    from sklearn.model_selection import StratifiedKFold

    p = np.zeros((repeats, len(y)))
    for r in range(repeats):
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=r).split(np.zeros(len(y)), y):
            model = quality.fit([hand[i] for i in train], None if vectors is None else vectors[train], y[train], c,
                                0.5, {})
            p[r, test] = model.reject_probability([hand[i] for i in test], None if vectors is None else vectors[test])
    return p.mean(axis=0)


def figures(p: np.ndarray, y: np.ndarray, rules_fired: np.ndarray, threshold: float, labels: pd.DataFrame) -> dict:
    rejected = rules_fired | (p >= threshold)
    out = {"threshold": threshold,
           "reject_recall": round(float(rejected[y == 1].mean()), 4),
           "keep_recall": round(float((~rejected)[y == 0].mean()), 4)}
    for reason in REASONS:
        has = labels["reasons"].map(lambda rs: reason in rs).to_numpy() & (y == 1)
        if has.any():
            out[f"caught_{reason}"] = f"{int(rejected[has].sum())}/{int(has.sum())}"
    return out


def margin_ceiling(hand_all: pd.DataFrame) -> float:
    """The highest off_domain margin over the calibration corpus: curation rejects a row without embedding it when
    the classifier rejects it even at this margin (quality.QualityClassifier.reject_floor)."""
    return round(float(hand_all[quality.MARGIN_FEATURE].max()), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpora/real_segments_dev")
    ap.add_argument("--labels", type=Path, default=ROOT / "labels/real_segments_dev.jsonl")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "output/cache")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--min-recall", type=float, default=0.9, help="the threshold chosen keeps both recalls above this "
                    "when it can; else the one with the best smaller recall")
    ap.add_argument("--target", choices=("passage", "segment"), default="segment",
                    help="passage: the reader's verdict on the shaped response (rejects whose bad part shaping cut "
                    "count as keeps); segment: the verdict on the whole segment as read")
    ap.add_argument("--embedding", action="store_true", help="also read the 384-d embedding (measured: worse at 440 labels)")
    ap.add_argument("--max-seq-length", type=int, default=None,
                    help="embedding window in word pieces (default: the model's own, as the chain runs; 128 measured "
                    "in docs/speed.md, session 10)")
    ap.add_argument("--c", type=float, nargs="+", default=C_GRID, help="the regularisation strengths tried (best CV wins)")
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args()

    labels = load_labels(args.labels)
    hand_all, vectors_all, voice = evidence_table(args.corpus, args.cache_dir, args.max_seq_length)
    index = {sid: i for i, sid in enumerate(hand_all["segment_id"])}
    labels = labels[labels["segment_id"].isin(index)].reset_index(drop=True)
    rows = [index[s] for s in labels["segment_id"]]
    y_segment = (labels["label"] == "reject").to_numpy().astype(int)
    rescued = passage_rescued(labels, hand_all.loc[rows].reset_index(drop=True))
    y = y_segment & ~rescued if args.target == "passage" else y_segment
    print(f"target {args.target!r}: {int(rescued.sum())} rejects whose bad part shaping cut (head/tail/middle, reasons "
          "shaping fixes) count as keeps under the passage target")
    rules_fired = hand_all["rules_fired"].to_numpy(bool)[rows]
    feature_cols = [c for c in hand_all.columns if c not in ("segment_id", "rules_fired")]
    hand = hand_all.loc[rows, feature_cols].to_dict("records")
    vectors = vectors_all[rows] if args.embedding else None
    print(f"{len(labels)} labelled segments: {int(y.sum())} reject, {int((1 - y).sum())} keep; voice sources {list(voice)}")
    print("rules alone:", figures(np.zeros(len(y)), y, rules_fired, 1.0, labels))

    best = None
    for c in args.c:
        p = cross_validate(hand, vectors, y, rules_fired, c, args.folds, args.repeats)
        table = [figures(p, y, rules_fired, t, labels) for t in THRESHOLDS]
        top = max(table, key=lambda f: (min(f["reject_recall"], f["keep_recall"]), f["reject_recall"]))
        print(f"C={c}: best min-recall {min(top['reject_recall'], top['keep_recall']):.3f} at threshold {top['threshold']}")
        if best is None or min(top["reject_recall"], top["keep_recall"]) > min(best[1]["reject_recall"], best[1]["keep_recall"]):
            best = (c, top, table, p)
    c, top, table, p = best
    print(f"\nchosen C={c}, cross-validated ({args.folds}-fold x {args.repeats}), rules OR classifier:")
    cols = ["threshold", "reject_recall", "keep_recall"] + [k for k in table[0] if k.startswith("caught_")]
    print(pd.DataFrame(table)[cols].to_string(index=False))
    print("\nchosen:", top)
    other = y_segment if args.target == "passage" else y
    print("the same decisions against the verdict on the whole segment as read:",
          figures(p, other, rules_fired, top["threshold"], labels))

    if args.save:
        labels_hash = hashlib.sha256(args.labels.read_bytes()).hexdigest()[:16]
        card = {"trained_on": f"{len(labels)} labels ({args.labels.name} sha256 {labels_hash})", "target": args.target,
                "whole_segment_verdict": figures(p, y_segment, rules_fired, top["threshold"], labels),
                "trained_at": datetime.date.today().isoformat(), "C": c, "embedding_model": "packaged:all-MiniLM-L6-v2" if args.embedding else None,
                "cross_validated": {"folds": args.folds, "repeats": args.repeats, "chosen": top, "by_threshold": table},
                "rules_alone": figures(np.zeros(len(y)), y, rules_fired, 1.0, labels),
                "domain_margin_ceiling": margin_ceiling(hand_all)}
        model = quality.fit(hand, vectors, y, c, float(top["threshold"]), card)
        model.save(quality.MODEL_DIR)
        print(f"saved {quality.MODEL_DIR}")


if __name__ == "__main__":
    main()
