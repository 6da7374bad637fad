"""Which responses open as an answer? Shaping's opening rules against the opening gate, on read openings, one run.

    python benchmarks/bench_opening_gate.py --output-dir OUT
    python benchmarks/bench_opening_gate.py --output-dir OUT --lm    # + SmolLM2-135M scores (~0.35 s an opening)

The verdicts are labels/opening_verdicts.jsonl: 236 first sentences of shaped real segments read in session 11
(docs/curation.md), "leans" (opens mid-thought: a pronoun or a "that" with nothing to point at, a fragment, a list
item, the talk's plan), "stands", or "borderline". Three draws: the 96 responses exported by session 10's run
(the rules were written on these), 80 curated segments without a pair (read next; rules added for what they
showed), and 60 more read after the rules were written (held out for the first version). OUT is a `data_chain`
run over the real development corpus: a verdict is scored only when its segment's first sentence there is the one
read (same content id), the others are counted and left out.

Printed per draw and verdict: how often each decision says "leans".
  - shaping: shaping's own opening tests on the final first sentence (what the chain had before the gate);
  - gate:    curation.openings.opening_problem (what `generated_prompts` rejects as `opening_leans`).
Then how often the gate fires over all curated segments, by what it names, and its time. With --lm: could a small
language model read what the gate misses? SmolLM2-135M-Instruct's mean log-probability of the first sentence as the
opening of an assistant's answer, minus as plain text (PMI), as ROC AUC "stands" against "leans", and how many
leaning openings the gate passes it would catch at a threshold that fires on 5 % of the standing ones.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pixel_pipeline.core.ids import content_id  # noqa: E402
from pixel_pipeline.curation import shaping  # noqa: E402
from pixel_pipeline.curation.openings import first_sentence, opening_problems  # noqa: E402

VERDICTS = ROOT / "labels" / "opening_verdicts.jsonl"
DRAWS = ("exported_s10", "curated_draw_1", "curated_draw_2")


def shaping_says_leans(sentence: str) -> bool:
    return shaping.starts_mid_thought(sentence) or shaping.leans_on_before(sentence) or shaping.is_fragment(sentence)


def kind(problem: str) -> str:
    """The gate's reason without the words it quotes: "'them' with no noun before it" -> "'...' with no noun ..."."""
    return re.sub(r"'.*?'(?= |:|$)", "'...'", problem.split(" (")[0])


def lm_answer_pmi(firsts: list[str], models_dir: Path) -> list[float]:
    """Mean log-probability of each sentence (first 48 tokens) after a chat prompt asking for help, minus after BOS."""
    from bench_answeredness import LanguageModelScores  # benchmarks/ is sys.path[0] when run as a script

    lm = LanguageModelScores(models_dir)
    tok, torch = lm.tokenizer, lm.torch
    chat = tok(lm._chat("Can you help me understand this?"), add_special_tokens=False)["input_ids"]
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else tok("\n", add_special_tokens=False)["input_ids"]

    def mean_logprob(prefix: list[int], sentence: str) -> float:
        ids = torch.tensor([prefix + tok(sentence, add_special_tokens=False)["input_ids"][:48]])
        with torch.no_grad():
            logprobs = lm.model(ids).logits[0, :-1].log_softmax(-1)
        return float(logprobs.gather(1, ids[0, 1:, None])[:, 0][len(prefix) - 1:].mean())

    return [mean_logprob(chat, s) - mean_logprob(bos, s) for s in firsts]


def report_lm(scored: pd.DataFrame, models_dir: Path) -> None:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    t0 = time.perf_counter()
    pmi = np.array(lm_answer_pmi(scored["first"].tolist(), models_dir))
    per = (time.perf_counter() - t0) / max(len(scored), 1)
    scored = scored.assign(pmi=pmi)
    print(f"\nSmolLM2-135M answer-opening PMI ({per:.2f} s an opening), ROC AUC 'stands' against 'leans':")
    for name, part in (("all read openings", scored), ("openings the gate passes", scored[~scored["gate"]])):
        clear = part[part["verdict"] != "borderline"]
        threshold = np.quantile(clear.loc[clear["verdict"] == "stands", "pmi"], 0.05)
        leans = clear[clear["verdict"] == "leans"]
        print(f"  {name:26} AUC {roc_auc_score(clear['verdict'] == 'stands', clear['pmi']):.3f}; at 5 % of standing "
              f"ones fired it catches {int((leans['pmi'] < threshold).sum())} of {len(leans)} leaning")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output-dir", type=Path, required=True, help="a data_chain run over the real development corpus")
    ap.add_argument("--lm", action="store_true", help="also score the openings with SmolLM2-135M-Instruct (slow)")
    args = ap.parse_args()
    curated = pd.read_parquet(args.output_dir / "tables" / "curated_segments.parquet")
    verdicts = pd.read_json(VERDICTS, lines=True)

    t0 = time.perf_counter()
    problems = opening_problems(curated["text"].tolist())
    seconds = time.perf_counter() - t0
    firsts = [first_sentence(t) for t in curated["text"]]
    first_of = dict(zip(curated["segment_id"], firsts))
    problem_of = dict(zip(curated["segment_id"], problems))

    have = verdicts["segment_id"].isin(first_of)
    same = have & (verdicts["segment_id"].map(lambda s: content_id(first_of[s]) if s in first_of else "")
                   == verdicts["first_sentence_id"])
    print(f"{len(verdicts)} verdicts; scored {int(same.sum())}; segment not curated in this run {int((~have).sum())}; "
          f"first sentence changed since it was read {int((have & ~same).sum())}")
    scored = verdicts[same].assign(
        first=lambda d: d["segment_id"].map(first_of),
        shaping=lambda d: d["segment_id"].map(lambda s: shaping_says_leans(first_of[s])),
        gate=lambda d: d["segment_id"].map(lambda s: problem_of[s] is not None),
    )
    print(f"\n{'draw':16} {'verdict':11} {'n':>4} {'shaping says leans':>19} {'gate says leans':>16}")
    for draw in DRAWS:
        for verdict in ("leans", "borderline", "stands"):
            d = scored[(scored["draw"] == draw) & (scored["verdict"] == verdict)]
            print(f"{draw:16} {verdict:11} {len(d):>4} {int(d['shaping'].sum()):>19} {int(d['gate'].sum()):>16}")
    for verdict in ("leans", "borderline", "stands"):
        d = scored[scored["verdict"] == verdict]
        print(f"{'all':16} {verdict:11} {len(d):>4} {int(d['shaping'].sum()):>19} {int(d['gate'].sum()):>16}")

    fired = [p for p in problems if p is not None]
    print(f"\nover the {len(curated)} curated segments: the gate fires on {len(fired)} "
          f"({len(fired) / max(len(curated), 1):.1%}) in {seconds:.1f} s (spaCy parse of first sentences); "
          f"shaping's tests on {sum(shaping_says_leans(s) for s in firsts)}")
    for name, n in Counter(kind(p) for p in fired).most_common():
        print(f"  {n:5}  {name}")
    if args.lm:
        report_lm(scored, args.output_dir / "models")


if __name__ == "__main__":
    main()
