#!/usr/bin/env python3
"""Cross-validated figures of curation's decision (named rules OR the learned quality classifier) on the reading
labels of the real development corpus, for every threshold, against the rules alone, in one run.

    python benchmarks/bench_quality_classifier.py [--corpus ../shared/corpora/real_segments_dev]

Prints: the rules alone (reject recall, keep recall, caught per reason), then for each L2 strength the best
threshold, then the whole threshold table of the chosen one (how reject and keep recall trade). Nothing is written;
`scripts/train_quality_classifier.py --save` is the same computation plus writing the model.
"""
import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv = [a for a in sys.argv if a != "--save"]
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "train_quality_classifier.py"), run_name="__main__")
