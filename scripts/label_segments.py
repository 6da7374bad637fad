#!/usr/bin/env python3
"""Draw and show the stratified sample of real segments that people label by reading (docs/labelling.md).

The labels (ids + verdicts + reasons, never texts) live in labels/; the texts stay in the corpus, which is not ours.

    python scripts/label_segments.py draw --corpus ../shared/corpora/real_segments_dev --n 440 --batches 4
    python scripts/label_segments.py draw --corpus ../shared/corpora/real_segments_dev --n 160 --batches 2 --source tim_fletcher --add
    python scripts/label_segments.py show --corpus ../shared/corpora/real_segments_dev --batch 1 [--start 0 --count 10]
    python scripts/label_segments.py merge            # labels/batch_*.jsonl -> labels/real_segments_dev.jsonl

Standard library only, so a labeller needs no install.
"""
from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import os
import random
import sys

LABELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "labels")
SAMPLE_FILE = os.path.join(LABELS_DIR, "sample.jsonl")
LABELS_FILE = os.path.join(LABELS_DIR, "real_segments_dev.jsonl")
REASONS = ("garbled", "repetitive", "housekeeping", "off_domain", "religious", "fragment", "harmful")


def segment_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_corpus(corpus: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(os.path.join(corpus, "training_segments", "*.json"))):
        with open(path, encoding="utf-8") as fh:
            for row in json.load(fh):
                rows.append({**row, "segment_id": segment_id(row["text"]), "input_file": os.path.basename(path)})
    return rows


def draw(corpus: str, n: int, batches: int, seed: int, source: str | None = None, drawn: list[dict] = ()) -> list[dict]:
    """Stratified by input file (style x quality) in proportion; within a file each source's chance is weighted so
    that its share of the sample goes with the square root of its size: the main educator stays the largest source
    without crowding out the smaller channels (weighted sampling without replacement, Efraimidis-Spirakis keys).
    `source`: draw from that source only; `drawn`: rows already in the sample, never drawn again (their batches are
    kept, new batches are numbered after them)."""
    taken = {r["segment_id"] for r in drawn}
    rows = {r["segment_id"]: r for r in read_corpus(corpus)  # exact repeats share an id: label once
            if r["segment_id"] not in taken and source in (None, r["source"])}
    by_file = collections.defaultdict(list)
    for r in rows.values():
        by_file[r["input_file"]].append(r)
    rng = random.Random(seed)
    total = sum(len(v) for v in by_file.values())
    picked = []
    for name, items in sorted(by_file.items()):
        quota = min(len(items), max(1, round(n * len(items) / total)))
        size = collections.Counter(r["source"] for r in items)
        keyed = sorted(items, key=lambda r: -rng.random() ** (size[r["source"]] ** 0.5))
        picked += keyed[:quota]
    rng.shuffle(picked)
    first = 1 + max((r["batch"] for r in drawn), default=0)
    return [*drawn, *({"segment_id": r["segment_id"], "input_file": r["input_file"], "source": r["source"],
             "style": r["style"], "batch": first + i % batches} for i, r in enumerate(picked))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("draw")
    d.add_argument("--corpus", required=True)
    d.add_argument("--n", type=int, default=440)
    d.add_argument("--batches", type=int, default=4)
    d.add_argument("--seed", type=int, default=12)
    d.add_argument("--source", help="draw from this source only (e.g. the main educator, tim_fletcher)")
    d.add_argument("--add", action="store_true", help="keep the sample drawn so far and add new batches after it")
    s = sub.add_parser("show")
    s.add_argument("--corpus", required=True)
    s.add_argument("--batch", type=int, required=True)
    s.add_argument("--start", type=int, default=0)
    s.add_argument("--count", type=int, default=10)
    sub.add_parser("merge")
    args = ap.parse_args()
    os.makedirs(LABELS_DIR, exist_ok=True)
    if args.cmd == "draw":
        drawn = []
        if args.add and os.path.exists(SAMPLE_FILE):
            with open(SAMPLE_FILE, encoding="utf-8") as fh:
                drawn = [json.loads(x) for x in fh if x.strip()]
        sample = draw(args.corpus, args.n, args.batches, args.seed, args.source, drawn)
        with open(SAMPLE_FILE, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in sample)
        print(f"{len(sample)} segments -> {SAMPLE_FILE}", collections.Counter(r["input_file"] for r in sample))
    elif args.cmd == "show":
        texts = {r["segment_id"]: r for r in read_corpus(args.corpus)}
        with open(SAMPLE_FILE, encoding="utf-8") as fh:
            mine = [json.loads(x) for x in fh if json.loads(x)["batch"] == args.batch]
        for i, r in enumerate(mine[args.start:args.start + args.count], start=args.start):
            row = texts[r["segment_id"]]
            print(f"=== [{i}/{len(mine)}] segment_id={r['segment_id']} file={r['input_file']} source={r['source']} "
                  f"words={len(row['text'].split())}\n{row['text']}\n")
    else:
        merged, seen = [], set()
        for path in sorted(glob.glob(os.path.join(LABELS_DIR, "batch_*.jsonl"))):
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    r = json.loads(line)
                    bad = [x for x in r.get("reasons", []) if x not in REASONS]
                    if r["label"] not in ("keep", "reject") or bad or (r["label"] == "reject") != bool(r["reasons"]):
                        sys.exit(f"{path}: bad label row {r}")
                    if r["segment_id"] not in seen:
                        seen.add(r["segment_id"])
                        merged.append(r)
        with open(LABELS_FILE, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, sort_keys=True) + "\n" for r in merged)
        c = collections.Counter(r["label"] for r in merged)
        print(f"{len(merged)} labels -> {LABELS_FILE}: {dict(c)}",
              collections.Counter(x for r in merged for x in r["reasons"]).most_common())


if __name__ == "__main__":
    main()
