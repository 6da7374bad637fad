"""The expert router's accuracy on real client questions, labelled by reading (not on generated prompts).

    python benchmarks/router_real_questions.py OUTPUT_DIR

Trains the router the way the `expert_router` asset does (training/router.train_router_from_exports on
OUTPUT_DIR/exports) and routes the counseling client questions whose expert was assigned by reading
(benchmarks/data/router_client_questions.csv: question_id, expert; the texts come from the run's
counseling_conversations table, so no client text is stored here). Experts, as labelled:
therapeutic = working through a wound or a condition (trauma, PTSD, depression, OCD, a childhood pattern);
educational = wants to understand what is going on or whether it is normal; empathetic = mainly needs the pain
heard and validated (grief, loneliness, shame); practical = wants concrete steps for a present situation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pixel_pipeline.core.embeddings import Embedder  # noqa: E402
from pixel_pipeline.training.router import evaluate_router, train_router_from_exports  # noqa: E402

LABELS = Path(__file__).parent / "data" / "router_client_questions.csv"


def labelled_questions(output_dir: Path, labels_path: Path = LABELS) -> tuple[list[str], list[str]]:
    labels = pd.read_csv(labels_path, dtype=str)
    table = pd.read_parquet(output_dir / "tables" / "counseling_conversations.parquet")
    texts = table.drop_duplicates("question_id").set_index("question_id")["prompt"]
    missing = sorted(set(labels["question_id"]) - set(texts.index))
    if missing:
        raise SystemExit(f"{len(missing)} labelled question ids are not in {output_dir}: {missing[:5]}")
    return [texts[q] for q in labels["question_id"]], labels["expert"].tolist()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("output_dir", type=Path)
    ap.add_argument("--labels", type=Path, default=LABELS)
    args = ap.parse_args()
    embedder = Embedder(cache_dir=args.output_dir / "cache" / "embeddings")
    router, report = train_router_from_exports(args.output_dir / "exports", embedder)
    questions, labels = labelled_questions(args.output_dir, args.labels)
    result = evaluate_router(router, embedder.encode(questions), labels)
    majority = Counter(labels).most_common(1)[0]
    print(json.dumps({
        "train_rows": report["train_rows"],
        "rows_per_style": report["rows_per_style"],
        "validation_accuracy_on_generated_prompts": report["validation_accuracy"],
        "real_questions": len(labels),
        "real_question_accuracy": round(result["accuracy"], 4),
        "majority_class_accuracy": round(majority[1] / len(labels), 4),
        "confusion_labels": result["labels"],
        "confusion": result["confusion"],
    }, indent=1))


if __name__ == "__main__":
    main()
