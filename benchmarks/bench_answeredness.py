"""Does a score the chain can afford predict a blind reader's verdict on a pair? ROC AUC per score, one run.

    python benchmarks/bench_answeredness.py --output-dir OUT            # MiniLM cosines (seconds)
    python benchmarks/bench_answeredness.py --output-dir OUT --lm       # + SmolLM2-135M PMI (~1.6 s a pair on 2 cores)

The verdicts are labels/prompt_verdicts.jsonl: session 9's blind readings of exported pairs (segment id, question,
"yes" = a question a person would ask the educator and answered by the response; docs/prompts.md). The response
of each is the shaped text of its segment in OUT's curated_segments table (a `data_chain` run over the real
development corpus); verdicts whose segment is not there are counted and left out. Scores:
  - MiniLM cosine of the question with the whole response and with its first three sentences;
  - with --lm, SmolLM2-135M-Instruct (packaged, offline): the response's first 128 tokens' mean log-probability
    after the question minus after a neutral question (pointwise mutual information), and the question's mean
    log-probability after the response minus without it.
A score that separates "yes" from "no" (AUC well above 0.5) could gate pairs; docs/prompts.md, session 10.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pixel_pipeline.core.embeddings import Embedder  # noqa: E402
from pixel_pipeline.curation.text import sentences  # noqa: E402

NEUTRAL_QUESTION = "Tell me something."
ASK_FOR_A_QUESTION = "Write a question a person might ask a therapist."


def first_sentences(text: str, n: int = 3) -> str:
    return " ".join(sentences(text)[:n])


def verdict_pairs(verdicts_path: Path, output_dir: Path) -> tuple[pd.DataFrame, int, int]:
    """(pairs with their response, verdicts whose segment is not in the run, verdicts without a stored question:
    a talk's own question quoted word for word from the corpus is not kept in the repository)."""
    verdicts = pd.read_json(verdicts_path, lines=True)
    curated = pd.read_parquet(output_dir / "tables" / "curated_segments.parquet").set_index("segment_id")["text"]
    asked = verdicts["question"].notna()
    have = verdicts["segment_id"].isin(curated.index)
    pairs = verdicts[have & asked].assign(response=lambda d: d["segment_id"].map(curated)).reset_index(drop=True)
    return pairs, int((asked & ~have).sum()), int((~asked).sum())


class LanguageModelScores:
    """Conditional log-probabilities under SmolLM2-135M-Instruct, through its chat template."""

    def __init__(self, models_dir: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from pixel_pipeline.training.base_model import SMOLLM2, ensure_packaged_model

        folder = ensure_packaged_model(SMOLLM2, models_dir)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

    def _chat(self, user: str) -> str:
        return self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                  add_generation_prompt=True)

    def mean_logprob(self, user: str, target: str, max_tokens: int | None = None) -> float:
        prefix = self.tokenizer(self._chat(user), add_special_tokens=False)["input_ids"]
        tokens = self.tokenizer(target, add_special_tokens=False)["input_ids"][:max_tokens]
        ids = self.torch.tensor([prefix + tokens])
        with self.torch.no_grad():
            logprobs = self.model(ids).logits[0, :-1].log_softmax(-1)
        picked = logprobs.gather(1, ids[0, 1:, None])[:, 0][len(prefix) - 1 :]
        return float(picked.mean())

    def scores(self, question: str, response: str) -> dict[str, float]:
        head = self.tokenizer.decode(self.tokenizer(response, add_special_tokens=False)["input_ids"][:200])
        ask = f"Here is a passage:\n\n{head}\n\nWrite the question a person asked that this passage answers."
        return {
            "SmolLM2 PMI: response given question": self.mean_logprob(question, response, 128)
            - self.mean_logprob(NEUTRAL_QUESTION, response, 128),
            "SmolLM2 PMI: question given response": self.mean_logprob(ask, question)
            - self.mean_logprob(ASK_FOR_A_QUESTION, question),
        }


def main() -> None:
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, required=True, help="a data_chain run over the real corpus")
    parser.add_argument("--verdicts", type=Path, default=ROOT / "labels" / "prompt_verdicts.jsonl")
    parser.add_argument("--lm", action="store_true", help="also score with SmolLM2-135M-Instruct (slow on CPU)")
    args = parser.parse_args()

    pairs, missing, unstored = verdict_pairs(args.verdicts, args.output_dir)
    if pairs.empty:
        raise SystemExit(f"no verdict's segment is in {args.output_dir}/tables/curated_segments.parquet")
    y = (pairs["verdict"] == "yes").to_numpy()
    embedder = Embedder(cache_dir=args.output_dir / "cache")
    q = embedder.encode(pairs["question"].tolist())
    scores = {"MiniLM cosine: question, whole response": (q * embedder.encode(pairs["response"].tolist())).sum(1),
              "MiniLM cosine: question, first three sentences":
                  (q * embedder.encode([first_sentences(r) for r in pairs["response"]])).sum(1)}
    if args.lm:
        lm = LanguageModelScores(args.output_dir / "models")
        rows = [lm.scores(qq, rr) for qq, rr in zip(pairs["question"], pairs["response"])]
        for name in rows[0]:
            scores[name] = np.array([r[name] for r in rows])
    print(f"{len(pairs)} verdicts ({int(y.sum())} yes) from {args.verdicts.name}; left out: {missing} (segment not "
          f"in this run), {unstored} (question not stored)")
    print("| score | ROC AUC against 'yes' |\n| --- | ---: |")
    for name, values in scores.items():
        print(f"| {name} | {roc_auc_score(y, values):.3f} |")


if __name__ == "__main__":
    main()
