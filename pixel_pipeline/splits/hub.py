"""Pushing the exported DatasetDict to the Hugging Face Hub with a token that never reaches logs, metadata or errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

REDACTED = "***"


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, REDACTED) if secret else text


def push_dataset_to_hub(
    dataset_dict, hub_repo_id: str, hub_token_env_var: str, hub_private: bool, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Push with the token read from the environment; the token never reaches logs, metadata or errors."""
    token = os.environ.get(hub_token_env_var, "")
    if not token:
        raise ValueError(f"hub_repo_id={hub_repo_id!r} is set but the environment variable {hub_token_env_var} is empty")
    log(f"pushing the dataset to the Hub as {hub_repo_id} (token from ${hub_token_env_var})")
    try:
        info = dataset_dict.push_to_hub(hub_repo_id, token=token, private=hub_private)
    except Exception as exc:  # re-raise without the original traceback, which may quote the token
        raise RuntimeError(f"push_to_hub to {hub_repo_id} failed: {redact(f'{type(exc).__name__}: {exc}', token)}") from None
    commit = getattr(info, "oid", None) or getattr(info, "commit_url", None)
    return {"repo_id": hub_repo_id, "private": hub_private, "token_env_var": hub_token_env_var,
            "commit": redact(str(commit), token) if commit else None}


def push_exports_to_hub(
    hf_dataset_dir: Path, hub_repo_id: str, hub_token_env_var: str, hub_private: bool,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The saved DatasetDict pushed when a repo is configured; `{"pushed": False}` when none is."""
    if not hub_repo_id:
        return {"pushed": False}
    from datasets import load_from_disk

    return {"pushed": True, **push_dataset_to_hub(
        load_from_disk(str(hf_dataset_dir)), hub_repo_id, hub_token_env_var, hub_private, log=log,
    )}
