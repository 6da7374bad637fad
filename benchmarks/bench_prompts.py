"""Prompt generators side by side against the naive topic-word baseline, on one corpus, in one run.

    python benchmarks/bench_prompts.py                       # data/ (PIXEL_DATA_DIR) through the ingest loaders
    python benchmarks/bench_prompts.py --data-dir /corpus    # any corpus of the same layout
    python benchmarks/bench_prompts.py --synthetic 2000      # a generated corpus of 2,000 segments
    python benchmarks/bench_prompts.py --llm-model /models/qwen2.5-0.5b-instruct   # add the LLM row

Rows: the naive baseline (style templates filled with one topic word, issue 3), each generator alone, and all of
them combined (the asset's default). Columns: specificity (BM25 recall@1 of the true response among all responses,
queried with the prompt), distinct prompts, distinct-2, mean alignment (MiniLM cosine), pairs kept / rejected, and
throughput (segments/s, cold candidate cache). Segment embeddings are computed once up front and shared by all rows
(the asset gets them from the same cache, usually already filled by curation); prompt and phrase embeddings are
computed cold for every row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pixel_pipeline.core.embeddings import Embedder  # noqa: E402
from pixel_pipeline.core.ids import content_id  # noqa: E402
from pixel_pipeline.prompts.pipeline import PromptSettings, generate_prompts  # noqa: E402
from pixel_pipeline.prompts.report import prompt_metrics  # noqa: E402
from pixel_pipeline.prompts.specificity import BM25Index  # noqa: E402
from pixel_pipeline.testing.prompts_corpus import synthetic_corpus  # noqa: E402
from pixel_pipeline.prompts.text import words  # noqa: E402

# ---- the naive baseline of issue 3: style templates filled with one topic word ---------------------------------
TOPIC_WORDS = [
    "trauma", "anxiety", "depression", "recovery", "healing", "grief", "relationships", "stress", "shame", "anger",
    "addiction", "boundaries", "self-esteem", "loneliness", "sleep", "panic", "attachment", "burnout", "emotions",
]
NAIVE_TEMPLATES = {
    "therapeutic": ["How can I heal from {t}?", "What does recovery from {t} look like for someone like me?", "How do I start working through my {t}?"],
    "educational": ["Can you explain how {t} affects people?", "What is {t} and why does it happen?", "What should I understand about {t}?"],
    "empathetic": ["I feel overwhelmed by {t}. Is it normal to feel this way?", "Why does {t} hurt so much?", "Is it okay that I still struggle with {t}?"],
    "practical": ["What are the most effective approaches for dealing with {t}?", "What practical steps can I take for {t}?", "What can I do every day about {t}?"],
}


def naive_prompts(segments: pd.DataFrame, seed: int = 13) -> list[str]:
    out = []
    for sid, text, style in zip(segments["segment_id"], segments["text"], segments["style"]):
        toks = words(text)
        counts = {t: toks.count(t) for t in TOPIC_WORDS}
        topic = max(counts, key=counts.get) if max(counts.values()) else "mental health"
        forms = NAIVE_TEMPLATES.get(style) or [f for fs in NAIVE_TEMPLATES.values() for f in fs]
        out.append(random.Random(f"{seed}:{sid}").choice(forms).format(t=topic))
    return out


# ---- corpus --------------------------------------------------------------------------------------------------
def load_corpus(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Segments and counseling questions of a data folder, through pixel_pipeline.ingest when it is there."""
    try:
        from pixel_pipeline.ingest.conversations import ConversationSettings, combine_conversation_results, load_counseling
        from pixel_pipeline.ingest.segments import SegmentSettings, combine_file_results, list_segment_inputs, load_input_file

        settings = SegmentSettings()
        files, _ = list_segment_inputs(data_dir, settings)
        results = [load_input_file(f, settings) for f in files]
        results = [r.with_rows(r.rows.assign(style_predicted=None, style_confidence=0.0, style=None, expert=None)) if r.rows is not None else r for r in results]
        rows, _rejects = combine_file_results(results)
        segments = rows.assign(style=rows["style_given"])[["segment_id", "text", "style", "source", "file"]]
        conv_results, _ = load_counseling(data_dir / "counseling", data_dir, ConversationSettings())
        conversations, _ = combine_conversation_results(conv_results, "counseling", "counseling_conversations")
        return segments.reset_index(drop=True), conversations, "pixel_pipeline.ingest loaders"
    except ImportError as exc:
        print(f"(ingest loaders not importable: {exc}; reading the JSON files directly)")
    seg_rows = []
    for path in sorted((data_dir / "training_segments").glob("*.json")):
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("text"), str) and item["text"].strip():
                seg_rows.append({"segment_id": content_id(item["text"]), "text": item["text"], "style": item.get("style"), "source": item.get("source"), "file": item.get("file")})
    segments = pd.DataFrame(seg_rows).drop_duplicates("segment_id").reset_index(drop=True)
    questions = []
    for path in sorted((data_dir / "counseling").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                questions.append(json.loads(line)["Context"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    conversations = pd.DataFrame({"dataset": "counseling", "prompt": questions, "question_id": [content_id(q) for q in questions]})
    return segments, conversations, "JSON read directly"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("PIXEL_DATA_DIR", "data"))
    parser.add_argument("--synthetic", type=int, default=0, help="use a generated corpus of N segments instead")
    parser.add_argument("--limit", type=int, default=0, help="only the first N segments")
    parser.add_argument("--llm-model", default=os.environ.get("PIXEL_PROMPT_LLM", ""))
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()

    data_dir = Path(args.data_dir)
    if args.synthetic or not (data_dir / "training_segments").is_dir():
        n = args.synthetic or 1000
        segments, conversations = synthetic_corpus(n)
        origin = f"generated corpus ({n} segments, pixel_pipeline.testing.prompts_corpus)"
    else:
        segments, conversations, how = load_corpus(data_dir)
        origin = f"{data_dir} ({how})"
    if args.limit:
        segments = segments.head(args.limit)
    n_questions = conversations["prompt"].nunique() if len(conversations) else 0
    print(f"corpus: {origin}: {len(segments)} segments, {n_questions} distinct client questions; cpu threads: {os.cpu_count()}")

    work = Path(tempfile.mkdtemp(prefix="bench_prompts_"))
    warm = work / "warm"
    embedder = Embedder(cache_dir=warm)
    t0 = time.perf_counter()
    embedder.encode(segments["text"].tolist())
    print(f"segment embeddings (once, shared by every row): {time.perf_counter() - t0:.1f}s")

    responses = segments["text"].tolist()
    rows = []
    t0 = time.perf_counter()
    naive = naive_prompts(segments)
    naive_seconds = time.perf_counter() - t0
    naive_alignment = (embedder.encode(naive) * embedder.encode(responses)).sum(axis=1)
    rows.append({"method": "naive topic-word templates", **prompt_metrics(naive, responses, naive_alignment), "rejected": 0, "segments_per_s": round(len(segments) / max(naive_seconds, 1e-9))})

    configs = [
        ("talk", ["talk"]),
        ("retrieval", ["retrieval"]),
        ("concepts", ["concepts"]),
        ("llm", ["llm"]),
        ("combined", ["talk", "retrieval", "concepts", "llm"]),
    ]
    for name, generators in configs:
        row_cache = work / name
        shutil.copytree(warm, row_cache)  # segment vectors only: everything else is computed cold
        row_embedder = Embedder(cache_dir=row_cache)
        settings = PromptSettings(generators=generators, llm_model=args.llm_model)
        t0 = time.perf_counter()
        run = generate_prompts(segments, conversations, row_embedder, settings)
        seconds = time.perf_counter() - t0
        if set(generators) <= set(run.skipped):
            rows.append({"method": name, "skipped": run.skipped[generators[0]]})
            continue
        kept = run.table
        by_id = dict(zip(segments["segment_id"], responses))
        metrics = prompt_metrics(kept["prompt"].tolist(), [by_id[s] for s in kept["segment_id"]], kept["alignment"].tolist())
        # Specificity against ALL responses (rejected segments' responses still compete), as for the baseline;
        # a rejected segment counts as not found.
        position = {sid: i for i, sid in enumerate(segments["segment_id"])}
        ranks = BM25Index(responses).ranks(kept["prompt"].tolist(), [position[s] for s in kept["segment_id"]])
        found = int((ranks == 1).sum())
        rows.append(
            {
                "method": name + (f" (skipped: {', '.join(run.skipped)})" if run.skipped else ""),
                **metrics,
                "specificity_bm25_recall_at_1": round(found / len(segments), 4),
                "rejected": len(run.rejects),
                "segments_per_s": round(len(segments) / seconds, 2),
                "winners": dict(kept["generator"].value_counts()),
            }
        )
    shutil.rmtree(work, ignore_errors=True)

    table = pd.DataFrame(rows)
    cols = ["method", "pairs", "rejected", "specificity_bm25_recall_at_1", "distinct_prompts", "distinct_2", "alignment_mean", "segments_per_s"]
    cols = [c for c in cols if c in table]
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)
    print(table[cols].to_string(index=False))
    for row in rows:
        if "skipped" in row:
            print(f"{row['method']}: {row['skipped']}")
        elif row.get("winners"):
            print(f"{row['method']} winners: {row['winners']}")
    base = rows[0]["specificity_bm25_recall_at_1"]
    comb = [r for r in rows if r["method"].startswith("combined")][0]
    print(
        f"combined vs naive: specificity {comb['specificity_bm25_recall_at_1']:.3f} vs {base:.3f}, "
        f"distinct prompts {comb['distinct_prompts']:.1%} vs {rows[0]['distinct_prompts']:.1%}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
