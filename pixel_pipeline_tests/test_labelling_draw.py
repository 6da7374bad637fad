"""scripts/label_segments.py draw: a labelling sample can grow by one source without touching what was drawn."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _label_segments():
    spec = importlib.util.spec_from_file_location("label_segments", REPO / "scripts" / "label_segments.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _corpus(root: Path) -> Path:
    folder = root / "training_segments"
    folder.mkdir(parents=True)
    for style in ("therapeutic", "practical"):
        rows = [{"text": f"{style} segment {i} from {source}.", "style": style, "quality": 0.5, "source": source,
                 "file": f"{source}.txt"} for source in ("educator", "channel_a", "channel_b") for i in range(12)]
        (folder / f"{style}_medium_quality.json").write_text(json.dumps(rows))
    return root


def test_adding_batches_of_one_source_keeps_the_drawn_sample_and_never_draws_an_id_twice(tmp_path):
    ls = _label_segments()
    corpus = str(_corpus(tmp_path))
    first = ls.draw(corpus, n=30, batches=2, seed=12)
    grown = ls.draw(corpus, n=10, batches=2, seed=13, source="educator", drawn=first)

    assert grown[:len(first)] == first  # the rows already drawn (and labelled) stay as they were
    added = grown[len(first):]
    assert len(added) == 10 and {r["source"] for r in added} == {"educator"}
    assert {r["batch"] for r in added} == {3, 4}  # numbered after the batches drawn so far
    ids = [r["segment_id"] for r in grown]
    assert len(ids) == len(set(ids))
