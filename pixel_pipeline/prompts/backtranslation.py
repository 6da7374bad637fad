"""`llm`: instruction backtranslation (Li et al. 2023) with a local Hugging Face causal LM.

Optional: it runs only where a real instruct model is configured (`llm_model`, e.g. a GPU user's 7B-8B model); with
none, or one it cannot load, it raises `GeneratorUnavailable` and the run log says it was skipped. SmolLM2-135M is
too weak to write the question (it answers instead of asking).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.prompts.generators import LLM, Candidate, GeneratorUnavailable, Progress, SegmentInput, _fingerprint

log = logging.getLogger(__name__)


BACKTRANSLATION_INSTRUCTION = (
    "Below is part of a talk by a mental-health educator.\n\n---\n{segment}\n---\n\n"
    "Write the question a client could have asked that this passage answers. Write it in the client's own voice, "
    "in the first person, in one or two sentences, ending with a question mark. Do not copy phrases from the "
    "passage. Reply with the question only."
)

_LABEL_PREFIXES = ("question:", "client:", "q:", "the question:", "client question:")


def clean_generated_question(text: str) -> str:
    """The question out of a model's reply: first paragraph, labels and quotes removed, cut after the first '?'."""
    text = text.strip()
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    text = paragraphs[0] if paragraphs else ""
    lowered = text.lower()
    for prefix in _LABEL_PREFIXES:
        if lowered.startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    if "?" in text:
        text = text[: text.index("?") + 1]
    return text.strip().strip("\"'“”‘’").strip()


class LLMBacktranslationGenerator:
    """Instruction backtranslation (Li et al. 2023): a causal LM writes the question the segment answers.

    The model is any Hugging Face causal LM id or local folder (`llm_model`); it runs batched, on the GPU when one
    is present (or `llm_device`). Nothing is downloaded when HF_HUB_OFFLINE=1; remote code is never trusted.
    """

    name = LLM

    def __init__(
        self,
        llm_model: str,
        llm_batch_size: int = 8,
        llm_max_new_tokens: int = 64,
        llm_candidates: int = 2,
        llm_temperature: float = 0.8,
        llm_device: str = "",
        seed: int = 13,
        max_segment_words: int = 300,
        max_input_tokens: int = 1024,
    ):
        if not llm_model:
            raise GeneratorUnavailable(
                "llm: no model configured; skipped. Set llm_model (or PIXEL_PROMPT_LLM) to a local folder or a "
                "Hugging Face causal LM id available offline to enable instruction backtranslation."
            )
        self.llm_model = llm_model
        self.batch_size = max(1, llm_batch_size)
        self.max_new_tokens = llm_max_new_tokens
        self.n_candidates = max(1, llm_candidates)
        self.temperature = llm_temperature
        self.seed = seed
        self.max_segment_words = max_segment_words
        self.max_input_tokens = max_input_tokens
        self.device = llm_device or None
        self.tokenizer = None
        self.model = None
        self.stats = {"generated": 0, "batches": 0}

    def fingerprint(self) -> str:
        return _fingerprint(
            self.name,
            model=self.llm_model,
            max_new_tokens=self.max_new_tokens,
            candidates=self.n_candidates,
            temperature=self.temperature,
            seed=self.seed,
            max_segment_words=self.max_segment_words,
            instruction=sha256_hex(BACKTRANSLATION_INSTRUCTION),
        )

    def load(self) -> None:
        """Load tokenizer and model once; GeneratorUnavailable (with the reason) when that is impossible."""
        if self.model is not None:
            return
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
            tokenizer = AutoTokenizer.from_pretrained(self.llm_model, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(self.llm_model, dtype=dtype, trust_remote_code=False)
        except Exception as exc:  # missing folder, hub unreachable, not a causal LM, ...
            raise GeneratorUnavailable(
                f"llm: could not load {self.llm_model!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); skipped"
            ) from exc
        tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        tokenizer.truncation_side = "left"  # keep the instruction's end ("Reply with the question only.")
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise GeneratorUnavailable(f"llm: tokenizer of {self.llm_model!r} has neither a pad nor an eos token; skipped")
            tokenizer.pad_token = tokenizer.eos_token
        self.device = device
        self.tokenizer = tokenizer
        self.model = model.to(device).eval()
        log.info("llm backtranslation model %s loaded on %s", self.llm_model, device)

    def render(self, segment: SegmentInput) -> str:
        text = " ".join(segment.text.split()[: self.max_segment_words])
        instruction = BACKTRANSLATION_INSTRUCTION.format(segment=text)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
            )
        return instruction + "\n\nQuestion:"

    def generate(self, segments: Sequence[SegmentInput], progress: Progress | None = None) -> list[list[Candidate]]:
        import torch

        self.load()
        tok, model = self.tokenizer, self.model
        uses_chat_template = bool(getattr(tok, "chat_template", None))
        order = sorted(range(len(segments)), key=lambda i: len(segments[i].text))  # similar lengths pad less
        out: list[list[Candidate]] = [[] for _ in segments]
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = tok(
                [self.render(segments[i]) for i in idx],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_input_tokens,
                add_special_tokens=not uses_chat_template,
            )
            enc.pop("token_type_ids", None)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            torch.manual_seed(self.seed + start)
            sample = self.temperature > 0
            with torch.inference_mode():
                generated = model.generate(
                    **enc,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=sample,
                    temperature=self.temperature if sample else None,
                    top_p=0.95 if sample else None,
                    num_return_sequences=self.n_candidates if sample else 1,
                    pad_token_id=tok.pad_token_id,
                )
            new_tokens = generated[:, enc["input_ids"].shape[1] :]
            texts = tok.batch_decode(new_tokens, skip_special_tokens=True)
            per_input = len(texts) // len(idx)
            for k, i in enumerate(idx):
                seen = set()
                for raw in texts[k * per_input : (k + 1) * per_input]:
                    question = clean_generated_question(raw)
                    if question and question not in seen:
                        seen.add(question)
                        out[i].append(Candidate(prompt=question, generator=self.name, note=f"model={self.llm_model}"))
            self.stats["batches"] += 1
            self.stats["generated"] += len(texts)
            if progress:
                progress(min(start + self.batch_size, len(order)), len(order))
        return out
