"""Answer client questions: route each to a style expert, then generate with that expert's adapter.

All four adapters sit on one base model; a batch mixing experts is generated in one pass with PEFT's
`adapter_names=[...]` (one adapter name per row), so routing never forces one request per expert.

    assistant = ExpertAssistant.from_outputs(paths)           # after expert_adapters + expert_router
    assistant.answer(["How do I stop overthinking?", ...])    # -> [{"question", "expert", "answer"}, ...]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixel_pipeline.splits.system_prompts import system_prompt
from pixel_pipeline.training.router import Router


@dataclass
class ExpertAssistant:
    model: Any  # PeftModel with one adapter per style
    tokenizer: Any
    router: Router | None
    embedder: Any | None
    device: str = "cpu"

    @classmethod
    def load(cls, base_model: str, models_dir: str | Path, expert_dirs: dict[str, str | Path],
             router_dir: str | Path | None = None, embedder=None, device: str | None = None,
             trust_remote_code: bool = False) -> "ExpertAssistant":
        from peft import PeftModel

        from pixel_pipeline.training.base_model import load_base_model, load_tokenizer

        tokenizer = load_tokenizer(base_model, models_dir, trust_remote_code)
        tokenizer.padding_side = "left"  # generation appends on the right
        base = load_base_model(base_model, models_dir, device=device, trust_remote_code=trust_remote_code)
        items = list(expert_dirs.items())
        model = PeftModel.from_pretrained(base, str(items[0][1]), adapter_name=items[0][0])
        for name, folder in items[1:]:
            model.load_adapter(str(folder), adapter_name=name)
        model.eval()
        router = Router.load(router_dir) if router_dir else None
        if router is not None and embedder is None:
            from pixel_pipeline.core.embeddings import Embedder

            embedder = Embedder(router.embedding_model)
        return cls(model, tokenizer, router, embedder, str(next(model.parameters()).device))

    @classmethod
    def from_outputs(cls, paths, embedder=None) -> "ExpertAssistant":
        """Everything from the pipeline's output folder (the pointers written by the training assets)."""
        experts = json.loads((paths.training_dir("expert_adapters") / "latest.json").read_text())
        return cls.load(experts["base_model"], paths.models_dir, experts["experts"],
                        paths.training_dir("expert_router"), embedder)

    def route(self, questions: list[str]) -> list[str]:
        if self.router is None:
            raise ValueError("no router loaded: pass experts explicitly")
        return self.router.route(questions, self.embedder)

    def answer(self, questions: list[str], experts: list[str] | None = None, max_new_tokens: int = 128,
               do_sample: bool = False) -> list[dict[str, str]]:
        import torch

        experts = experts or self.route(questions)
        prompts = [self.tokenizer.apply_chat_template(
            [{"role": "system", "content": system_prompt(e)}, {"role": "user", "content": q}],
            tokenize=False, add_generation_prompt=True) for q, e in zip(questions, experts)]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        with torch.no_grad():
            out = self.model.generate(**enc, adapter_names=list(experts), max_new_tokens=max_new_tokens,
                                      do_sample=do_sample, pad_token_id=self.tokenizer.pad_token_id)
        texts = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return [{"question": q, "expert": e, "answer": t.strip()} for q, e, t in zip(questions, experts, texts)]
