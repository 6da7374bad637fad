"""The expert router: sentence embeddings of a client's question + multinomial logistic regression over the styles.

Trained on the generated prompts of each expert's export (the folder's style is the label). Saved without pickle:
the coefficients as safetensors and the classes / embedding model name as JSON, so loading needs no scikit-learn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixel_pipeline.core.records import STYLES
from pixel_pipeline.training.data import user_prompts_jsonl


@dataclass
class Router:
    classes: list[str]
    coef: np.ndarray  # [n_classes, dim]
    intercept: np.ndarray  # [n_classes]
    embedding_model: str

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = vectors @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict_vectors(self, vectors: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.probabilities(vectors).argmax(axis=1)]

    def route(self, questions: list[str], embedder) -> list[str]:
        return self.predict_vectors(embedder.encode(questions))

    def save(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        from pixel_pipeline.core.io import atomic_path, write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "router.safetensors") as tmp:
            save_file({"coef": np.ascontiguousarray(self.coef, dtype=np.float32),
                       "intercept": np.ascontiguousarray(self.intercept, dtype=np.float32)}, str(tmp))
        write_json({"classes": self.classes, "embedding_model": self.embedding_model}, folder / "router.json")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "Router":
        from safetensors.numpy import load_file

        folder = Path(folder)
        meta = json.loads((folder / "router.json").read_text())
        tensors = load_file(str(folder / "router.safetensors"))
        return cls(meta["classes"], tensors["coef"], tensors["intercept"], meta["embedding_model"])


def labelled_prompts(exports_dir: str | Path, split: str, styles=STYLES) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for style in styles:
        path = Path(exports_dir) / "experts" / style / f"{split}.jsonl"
        if path.exists():
            prompts = user_prompts_jsonl(path)
            texts += prompts
            labels += [style] * len(prompts)
    return texts, labels


def train_router(train_vectors: np.ndarray, train_labels: list[str], regularization: float = 1.0,
                 seed: int = 42, embedding_model: str = "") -> Router:
    from sklearn.linear_model import LogisticRegression

    if len(set(train_labels)) < 2:
        raise ValueError(f"the router needs at least two styles with training prompts, got {sorted(set(train_labels))}")
    clf = LogisticRegression(C=regularization, max_iter=2000, random_state=seed, class_weight="balanced")
    clf.fit(train_vectors, train_labels)
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # binary problem: sklearn keeps one row; expand to a two-class softmax
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return Router([str(c) for c in clf.classes_], coef, intercept, embedding_model)


def evaluate_router(router: Router, vectors: np.ndarray, labels: list[str]) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    if not labels:
        return {"accuracy": None, "confusion": [], "labels": list(router.classes)}
    predicted = router.predict_vectors(vectors)
    order = sorted(set(router.classes) | set(labels), key=lambda s: STYLES.index(s) if s in STYLES else 99)
    cm = confusion_matrix(labels, predicted, labels=order)
    return {"accuracy": float(np.mean([p == t for p, t in zip(predicted, labels)])), "confusion": cm.tolist(),
            "labels": order}


def train_router_from_exports(exports_dir: str | Path, embedder, regularization: float = 1.0,
                              seed: int = 42) -> tuple[Router, dict[str, Any]]:
    train_texts, train_labels = labelled_prompts(exports_dir, "train")
    val_texts, val_labels = labelled_prompts(exports_dir, "validation")
    if not train_texts:
        raise FileNotFoundError(f"no expert prompts under {Path(exports_dir) / 'experts'}: materialize fine_tuning_exports")
    router = train_router(embedder.encode(train_texts), train_labels, regularization, seed,
                          embedding_model=str(embedder.model_name_or_path))
    train_eval = evaluate_router(router, embedder.encode(train_texts), train_labels)
    val_eval = evaluate_router(router, embedder.encode(val_texts), val_labels)
    header = "| true \\ predicted | " + " | ".join(val_eval["labels"]) + " |"
    lines = [header, "|---" * (len(val_eval["labels"]) + 1) + "|"]
    for name, row in zip(val_eval["labels"], val_eval["confusion"]):
        lines.append(f"| {name} | " + " | ".join(str(x) for x in row) + " |")
    report = {
        "train_rows": len(train_texts),
        "validation_rows": len(val_texts),
        "rows_per_style": {s: {"train": train_labels.count(s), "validation": val_labels.count(s)} for s in STYLES},
        "train_accuracy": train_eval["accuracy"],
        "validation_accuracy": val_eval["accuracy"],
        "confusion_labels": val_eval["labels"],
        "confusion_matrix": val_eval["confusion"],
        "confusion_markdown": "\n".join(lines),
    }
    return router, report


def confusion_figure(report: dict[str, Any]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, cm = report["confusion_labels"], np.array(report["confusion_matrix"] or [[0]])
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig
