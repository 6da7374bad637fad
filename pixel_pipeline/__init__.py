"""pixel_pipeline: transcripts and counseling conversations in, leakage-free fine-tuning data and LoRA adapters out."""

__version__ = "0.1.0"
