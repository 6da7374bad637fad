"""What each training stage taught, what the next stage made the model forget, and whether stage 3 sounds more
like the educator: the computation behind the `training_evaluation` asset (no Dagster import).

* Perplexity matrix: the base model and every stage on every stage's validation set (the diagonal is what a stage
  taught; a later row's rise on an earlier column is forgetting), and stage 3 plus every expert on every expert's
  validation set (specialisation from their common start). Loss on assistant tokens only, like training.
* Generations: a fixed set of client questions (eval_questions.json) answered greedily by the base model, stage 1,
  stage 3 and the expert the router picks, side by side.
* Voice score: mean cosine similarity (the project's Embedder) between a model's answers and the held-back voice
  responses (stage 3's validation split, never trained on). Base vs stage 3 shows whether stage 3 moved the voice.

All adapters on one base model are attached to one loaded copy of it under their own names, so the base is loaded
once per evaluation (continue chaining); merge chaining gives each stage its own merged base, loaded once each.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixel_pipeline.core.markdown import markdown_table
from pixel_pipeline.core.records import STAGE_COUNSELING, STAGE_NAMES, STAGE_VOICE
from pixel_pipeline.splits.system_prompts import system_prompt
from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL
from pixel_pipeline.training.data import Example, collate_rows, epoch_batches, read_messages_jsonl, tokenize_conversations

EVAL_QUESTIONS_FILE = Path(__file__).with_name("eval_questions.json")
BASE = "base"
STAGE_MODELS = tuple(STAGE_NAMES.values())
VOICE_STAGE = STAGE_NAMES[STAGE_VOICE]
GENERATION_MODELS = (BASE, STAGE_NAMES[STAGE_COUNSELING], VOICE_STAGE)  # plus the routed expert
ROUTED = "routed_expert"
CHECK_STAGE_PERPLEXITY = "each_stage_lowers_its_own_validation_perplexity"
CHECK_VOICE = "stage3_raises_voice_score"


def expert_model(style: str) -> str:
    return f"expert_{style}"


def load_eval_questions(path: str | Path = EVAL_QUESTIONS_FILE) -> list[str]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    questions = data.get("questions") if isinstance(data, dict) else None
    if not questions or not all(isinstance(q, str) and q.strip() for q in questions):
        raise ValueError(f"{path}: expected {{'questions': [non-empty strings]}}")
    return list(questions)


@dataclass(frozen=True)
class ModelRef:
    """One model of the evaluation: a base model (name or folder) with an adapter folder, or the base alone."""

    name: str
    base_model: str
    adapter_path: str | None = None


class ModelBank:
    """Every evaluated model behind one interface; each base model is loaded once and carries its adapters."""

    def __init__(self, refs: Sequence[ModelRef], models_dir: str | Path, device: str | None = None,
                 trust_remote_code: bool = False):
        import torch

        from pixel_pipeline.training.base_model import load_tokenizer

        self.refs = {r.name: r for r in refs}
        self.models_dir = models_dir
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.trust_remote_code = trust_remote_code
        self.tokenizer = load_tokenizer(refs[0].base_model, models_dir, trust_remote_code)
        self._loaded: dict[str, Any] = {}

    def _model_for(self, base_model: str):
        if base_model not in self._loaded:
            from peft import PeftModel

            from pixel_pipeline.training.base_model import load_base_model

            model = load_base_model(base_model, self.models_dir, device=self.device,
                                    trust_remote_code=self.trust_remote_code)
            for ref in self.refs.values():
                if ref.base_model != base_model or not ref.adapter_path:
                    continue
                if isinstance(model, PeftModel):
                    model.load_adapter(ref.adapter_path, adapter_name=ref.name)
                else:
                    model = PeftModel.from_pretrained(model, ref.adapter_path, adapter_name=ref.name)
            self._loaded[base_model] = model.eval()
        return self._loaded[base_model]

    @contextmanager
    def active(self, name: str) -> Iterator[Any]:
        """The model with `name`'s adapter switched on (or every adapter off for a bare base model)."""
        from peft import PeftModel

        ref = self.refs[name]
        model = self._model_for(ref.base_model)
        if ref.adapter_path:
            model.set_adapter(name)
            yield model
        else:
            with model.disable_adapter() if isinstance(model, PeftModel) else nullcontext():
                yield model


# ------------------------------------------------------------------------------------------------ perplexity
def load_eval_set(tokenizer, path: str | Path, max_seq_length: int, max_pairs: int = 0) -> list[Example]:
    """The first `max_pairs` conversations of a messages JSONL file (all when 0), tokenised like training."""
    conversations, _ = read_messages_jsonl([path])
    if max_pairs > 0:
        conversations = conversations[:max_pairs]
    examples, _ = tokenize_conversations(tokenizer, conversations, max_seq_length)
    return examples


def mean_target_loss(model, examples: Sequence[Example], max_seq_length: int, micro_batch_size: int, pad_id: int,
                     device: str) -> float:
    """Mean cross-entropy per assistant token over `examples`, packed like training (order does not matter)."""
    import torch

    from pixel_pipeline.training.trainer import batch_loss_sum

    total, n = 0.0, 0
    with torch.no_grad():
        for rows in epoch_batches(examples, max_seq_length, micro_batch_size, seed=0, epoch=0, shuffle=False):
            batch = collate_rows(examples, rows, pad_id)
            total += float(batch_loss_sum(model, batch, device))
            n += batch.n_target_tokens
    if n == 0:
        raise ValueError("no assistant tokens to evaluate")
    return total / n


def perplexity_rows(bank: ModelBank, models: Sequence[str], eval_sets: Mapping[str, Sequence[Example]], kind: str,
                    max_seq_length: int, micro_batch_size: int, log=print) -> list[dict[str, Any]]:
    rows = []
    for name in models:
        with bank.active(name) as model:
            for set_name, examples in eval_sets.items():
                loss = mean_target_loss(model, examples, max_seq_length, micro_batch_size, bank.tokenizer.pad_token_id,
                                        bank.device)
                rows.append({"kind": kind, "model": name, "eval_set": set_name, "loss": loss,
                             "perplexity": math.exp(min(loss, 50)), "pairs": len(examples),
                             "target_tokens": sum(e.n_target_tokens for e in examples)})
                log(f"perplexity {name} on {set_name}: {rows[-1]['perplexity']:.3f}")
    return rows


# ------------------------------------------------------------------------------------------------ generation
def generate_answers(bank: ModelBank, name: str, questions: Sequence[str], systems: Sequence[str],
                     max_new_tokens: int) -> list[str]:
    """Greedy answers in one left-padded batch (repetition_penalty 1.1 keeps a small model out of loops)."""
    import torch

    tok = bank.tokenizer
    prompts = [tok.apply_chat_template([{"role": "system", "content": s}, {"role": "user", "content": q}],
                                       tokenize=False, add_generation_prompt=True) for q, s in zip(questions, systems)]
    side, tok.padding_side = tok.padding_side, "left"
    try:
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(bank.device)
    finally:
        tok.padding_side = side
    with bank.active(name) as model, torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, repetition_penalty=1.1,
                             pad_token_id=tok.pad_token_id)
    return [t.strip() for t in tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]


def generation_table(bank: ModelBank, questions: Sequence[str], routes: Sequence[str], max_new_tokens: int,
                     log=print) -> list[dict[str, Any]]:
    """One row per question: the answers of base, stage 1, stage 3 (general system prompt) and the routed expert
    (its own system prompt)."""
    general = [system_prompt(None)] * len(questions)
    answers = {m: generate_answers(bank, m, questions, general, max_new_tokens) for m in GENERATION_MODELS}
    routed = [""] * len(questions)
    for style in sorted(set(routes)):
        idx = [i for i, r in enumerate(routes) if r == style]
        texts = generate_answers(bank, expert_model(style), [questions[i] for i in idx],
                                 [system_prompt(style)] * len(idx), max_new_tokens)
        for i, text in zip(idx, texts):
            routed[i] = text
    log(f"generated {len(questions)} answers from {len(GENERATION_MODELS) + 1} models")
    return [{"question": q, **{m: answers[m][i] for m in GENERATION_MODELS}, "routed_style": routes[i],
             ROUTED: routed[i]} for i, q in enumerate(questions)]


# ------------------------------------------------------------------------------------------------ voice score
def assistant_responses(path: str | Path, max_pairs: int = 0) -> list[str]:
    """The last assistant message of each conversation: the held-back voice the score compares against."""
    conversations, _ = read_messages_jsonl([path])
    responses = [[m["content"] for m in c if m["role"] == "assistant"][-1] for c in conversations]
    return responses[:max_pairs] if max_pairs > 0 else responses


def voice_scores(embedder, answers: Mapping[str, Sequence[str]], references: Sequence[str]) -> dict[str, float]:
    """Mean cosine similarity of each model's answers to every reference response (empty references: none)."""
    import numpy as np

    if not references:
        return {}

    def unit(texts):
        v = np.asarray(embedder.encode(list(texts)), dtype=np.float64)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    ref = unit(references)
    return {name: float((unit(texts) @ ref.T).mean()) for name, texts in answers.items() if texts}


# ------------------------------------------------------------------------------------------------ verdicts
def stage_perplexity_drops(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per stage evaluated on its own set: base and stage perplexity and the relative drop (0.1 = 10 % lower)."""
    ppl = {(r["model"], r["eval_set"]): r["perplexity"] for r in rows if r["kind"] == "stages"}
    out = {}
    for stage in STAGE_MODELS:
        if (stage, stage) in ppl and (BASE, stage) in ppl:
            base, own = ppl[(BASE, stage)], ppl[(stage, stage)]
            out[stage] = {"base_perplexity": base, "stage_perplexity": own, "drop": 1 - own / base}
    return out


def evaluation_verdicts(report: Mapping[str, Any], min_perplexity_drop: float = 0.0) -> list[dict[str, Any]]:
    """The two checks. Each fails when there is nothing to judge (no stage evaluated / no voice references)."""
    drops = stage_perplexity_drops(report["perplexity"])
    stage_ok = bool(drops) and all(d["drop"] > min_perplexity_drop for d in drops.values())
    voice = report.get("voice_scores") or {}
    base, stage3 = voice.get(BASE), voice.get(VOICE_STAGE)
    voice_ok = base is not None and stage3 is not None and stage3 > base
    return [
        {"check_name": CHECK_STAGE_PERPLEXITY, "passed": stage_ok,
         "metadata": {"per_stage": drops, "min_drop": min_perplexity_drop,
                      "stages_evaluated": len(drops)}},
        {"check_name": CHECK_VOICE, "passed": voice_ok,
         # the embedded tiny model is randomly initialised: its answers are noise, so on it the voice score is
         # reported as a warning, not a verdict (the perplexity check stays an error on every model)
         "severity": "warn" if report.get("base_model") == DEFAULT_BASE_MODEL else "error",
         "metadata": {"base": base, VOICE_STAGE: stage3, "references": report.get("voice_references", 0)}},
    ]


# ------------------------------------------------------------------------------------------------ markdown
def perplexity_matrix_markdown(rows: Sequence[Mapping[str, Any]], kind: str) -> str:
    """Models as rows, evaluation sets as columns; for stages each cell also shows the change against base."""
    selected = [r for r in rows if r["kind"] == kind]
    sets = list(dict.fromkeys(r["eval_set"] for r in selected))
    models = list(dict.fromkeys(r["model"] for r in selected))
    ppl = {(r["model"], r["eval_set"]): r["perplexity"] for r in selected}
    reference = BASE if kind == "stages" else VOICE_STAGE
    table = []
    for m in models:
        cells = [m]
        for s in sets:
            v, ref = ppl.get((m, s)), ppl.get((reference, s))
            if v is None:
                cells.append("—")
            elif m != reference and ref:
                cells.append(f"{v:.2f} ({(v / ref - 1) * 100:+.1f} %)")
            else:
                cells.append(f"{v:.2f}")
        table.append(cells)
    return markdown_table(table, columns=["model \\ validation set", *sets])


def generations_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    return markdown_table([[r["question"], r[BASE], r[STAGE_NAMES[STAGE_COUNSELING]], r[VOICE_STAGE],
                            f"**{r['routed_style']}**: {r[ROUTED]}"] for r in rows],
                          columns=["question", "base", "stage 1", "stage 3", "routed expert"])


def voice_markdown(scores: Mapping[str, float]) -> str:
    return markdown_table([[m, f"{s:.4f}"] for m, s in scores.items()], columns=["model", "voice score"])


def report_markdown(report: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"# Training evaluation ({report['base_model']})", "",
             "## Perplexity: base and stages on every stage's validation set (change vs base)", "",
             perplexity_matrix_markdown(report["perplexity"], "stages"), "",
             "## Perplexity: stage 3 and experts on every expert's validation set (change vs stage 3)", "",
             perplexity_matrix_markdown(report["perplexity"], "experts"), "",
             f"## Voice score (mean cosine similarity to {report['voice_references']} held-back stage-3 responses)", "",
             voice_markdown(report["voice_scores"]), "", "## Generations", "",
             generations_markdown(report["generations"]), "", "## Checks", ""]
    lines += [f"- {v['check_name']}: {'PASS' if v['passed'] else 'FAIL'}" for v in verdicts]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ the whole run
def models_and_sets(stage_pointers: Mapping[str, Mapping[str, Any]], experts_pointer: Mapping[str, Any],
                    exports_dir: Path) -> dict[str, Any]:
    """The models and validation sets `evaluate_training` compares, from the training assets' pointers
    (`stage_pointers` keyed by STAGE_MODELS names); validation sets that were not exported are left out."""
    # stage 1's base is the chain's starting point (in merge mode later stages sit on merged copies of it)
    base = ModelRef(BASE, stage_pointers[STAGE_NAMES[STAGE_COUNSELING]]["base_model"])
    stages = {name: ModelRef(name, p["base_model"], p["adapter_path"]) for name, p in stage_pointers.items()}
    experts = {style: ModelRef(style, experts_pointer["base_model"], folder)
               for style, folder in experts_pointer["experts"].items()}
    stage_sets = {name: exports_dir / "stages" / name / "validation.jsonl" for name in stages}
    expert_sets = {style: exports_dir / "experts" / style / "validation.jsonl" for style in experts}
    return {"base": base, "stages": stages, "experts": experts,
            "stage_sets": {k: v for k, v in stage_sets.items() if v.exists()},
            "expert_sets": {k: v for k, v in expert_sets.items() if v.exists()}}


def write_evaluation(report: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]], out: Path) -> Path:
    """perplexity.parquet, generations.parquet, evaluation.json (report plus verdicts) and evaluation.md, the
    report a person reads; returns its path."""
    import pandas as pd

    from pixel_pipeline.core.io import write_json, write_parquet, write_text

    write_parquet(pd.DataFrame(report["perplexity"]), out / "perplexity.parquet")
    write_parquet(pd.DataFrame(report["generations"]), out / "generations.parquet")
    write_json({**report, "checks": verdicts}, out / "evaluation.json")
    return write_text(report_markdown(report, verdicts), out / "evaluation.md")


def evaluate_training(
    base: ModelRef,
    stages: Mapping[str, ModelRef],
    experts: Mapping[str, ModelRef],
    stage_sets: Mapping[str, str | Path],
    expert_sets: Mapping[str, str | Path],
    questions: Sequence[str],
    route,
    embedder,
    models_dir: str | Path,
    device: str | None = None,
    max_seq_length: int = 1024,
    micro_batch_size: int = 2,
    max_validation_pairs: int = 0,
    max_new_tokens: int = 96,
    trust_remote_code: bool = False,
    cpu_threads: int = 0,
    log=print,
) -> dict[str, Any]:
    """Everything the asset reports. `stages` is keyed by STAGE_MODELS names, `experts` by style; `route(questions)`
    returns one style per question (the router)."""
    if VOICE_STAGE not in stages or VOICE_STAGE not in stage_sets:
        raise ValueError(f"the evaluation needs {VOICE_STAGE}'s adapter and validation set")
    if cpu_threads > 0:  # like the trainer's setting: on a busy CPU one thread can beat several fighting ones
        import torch

        torch.set_num_threads(cpu_threads)
    refs = [base, *stages.values(), *(ModelRef(expert_model(s), r.base_model, r.adapter_path) for s, r in experts.items())]
    bank = ModelBank(refs, models_dir, device, trust_remote_code)
    tokenize = lambda p: load_eval_set(bank.tokenizer, p, max_seq_length, max_validation_pairs)  # noqa: E731
    stage_examples = {k: ex for k, p in stage_sets.items() if (ex := tokenize(p))}
    expert_examples = {k: ex for k, p in expert_sets.items() if (ex := tokenize(p))}
    rows = perplexity_rows(bank, [BASE, *stages], stage_examples, "stages", max_seq_length, micro_batch_size, log)
    if experts and expert_examples:
        rows += perplexity_rows(bank, [VOICE_STAGE, *(expert_model(s) for s in experts)], expert_examples, "experts",
                                max_seq_length, micro_batch_size, log)
    routes = list(route(list(questions)))
    missing = sorted(set(routes) - set(experts))
    if missing:
        raise ValueError(f"the router picked experts {missing} that have no adapter (trained: {sorted(experts)})")
    generations = generation_table(bank, questions, routes, max_new_tokens, log)
    references = assistant_responses(stage_sets[VOICE_STAGE], max_validation_pairs)
    answers = {m: [g[m] for g in generations] for m in [*GENERATION_MODELS, ROUTED]}
    return {"base_model": base.base_model, "device": bank.device, "perplexity": rows, "generations": generations,
            "voice_scores": voice_scores(embedder, answers, references), "voice_references": len(references),
            "questions": list(questions),
            "settings": {"max_seq_length": max_seq_length, "max_validation_pairs": max_validation_pairs,
                         "max_new_tokens": max_new_tokens, "greedy": True, "repetition_penalty": 1.1}}
