"""A sentence-transformers model whose transformer runs on OpenVINO: the CPU fast path of core.embeddings.

sentence-transformers' own `backend="openvino"` needs `optimum-intel`, which pins transformers back (5.5) and pulls a
CUDA torch build, so this converts the already-loaded PyTorch transformer with `openvino.convert_model` instead.
Only the transformer moves: tokenisation, pooling, normalisation (and any Dense layer) stay the model's own
sentence-transformers modules, so every sentence-transformers model with a plain Transformer first module works,
and the vectors match `SentenceTransformer.encode` (cosine 1.0 at float32, >= 0.9999 at bf16 on the test texts).

The converted model (OpenVINO IR, float32 weights) is kept on disk under the embedding cache, keyed by a hash of the
transformer's weights and the library versions, so each Dagster step process compiles it in ~1 s instead of
re-tracing for ~5 s.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _transformer_inputs(model) -> tuple[str, ...]:
    """The tokenizer outputs the transformer takes (BERT: ids, mask, token types; MPNet and others: no types)."""
    features = _preprocess(model, ["a"])
    return tuple(name for name in MODEL_INPUTS if name in features)


def _preprocess(model, texts: list[str]) -> dict:
    preprocess = getattr(model, "preprocess", None) or model.tokenize  # `tokenize` before sentence-transformers 6
    return preprocess(texts)


def _weights_fingerprint(auto_model, input_names: tuple[str, ...]) -> str:
    """Changes when anything the converted model depends on changes: weights, config, inputs, library versions."""
    import openvino
    import torch
    import transformers

    digest = hashlib.sha256()
    digest.update(f"{openvino.__version__}|{torch.__version__}|{transformers.__version__}|{input_names}".encode())
    digest.update(auto_model.config.to_json_string().encode())
    for name, tensor in auto_model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:24]


def _last_hidden_state_module(auto_model):
    """The transformer as a torch module with named tensor inputs and one output, the form `convert_model` traces."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = auto_model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.model(**kwargs).last_hidden_state

    return LastHiddenState().eval()


def convert_transformer(model, ir_cache_dir: str | os.PathLike | None):
    """The OpenVINO model of `model[0].auto_model`, read from the IR cache or converted (and saved) now."""
    import openvino as ov
    import torch

    auto_model = model[0].auto_model
    input_names = _transformer_inputs(model)
    cached = None
    if ir_cache_dir:
        cached = Path(ir_cache_dir) / _weights_fingerprint(auto_model, input_names) / "model.xml"
        if cached.exists():
            return ov.Core().read_model(cached)
    features = _preprocess(model, ["an example sentence to trace the transformer with", "and a second one"])
    example = {name: features[name] for name in input_names}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes: shapes stay dynamic
        converted = ov.convert_model(_last_hidden_state_module(auto_model), example_input=example)
    if cached is not None:
        # Written in a temporary folder and renamed, so a concurrent step never reads half an IR.
        cached.parent.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cached.parent.parent, prefix=".tmp-"))
        try:
            ov.save_model(converted, tmp / "model.xml", compress_to_fp16=False)
            os.replace(tmp, cached.parent)
        except OSError:  # another process won the race: its IR is identical
            shutil.rmtree(tmp, ignore_errors=True)
    return converted


class OpenVinoSentenceEncoder:
    """`encode(texts) -> (n, dim) float32` for a loaded float32 SentenceTransformer, transformer on OpenVINO CPU.

    precision: "float32" or "bfloat16" (OpenVINO's inference precision hint; bf16 only where the CPU has bf16 units,
    which core.embeddings.resolve_precision decides).
    """

    def __init__(self, model, precision: str = "float32", ir_cache_dir: str | os.PathLike | None = None):
        import openvino as ov

        first = getattr(model[0], "auto_model", None)
        if first is None:
            raise ValueError("the OpenVINO backend needs a sentence-transformers model whose first module is a Transformer")
        self.model = model
        self.input_names = _transformer_inputs(model)
        hint = {"float32": "f32", "bfloat16": "bf16"}[precision]
        self.compiled = ov.Core().compile_model(
            convert_transformer(model, ir_cache_dir), "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        )
        log.info("embedding transformer compiled with OpenVINO (%s)", hint)

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        features = _preprocess(self.model, texts)
        token_embeddings = self.compiled({name: features[name].numpy() for name in self.input_names})[0]
        features["token_embeddings"] = torch.from_numpy(np.ascontiguousarray(token_embeddings, dtype=np.float32))
        with torch.no_grad():
            for module in list(self.model)[1:]:  # pooling, normalisation, dense: the model's own modules
                features = module(features)
        return features["sentence_embedding"].float().numpy()
