"""The learned quality classifier (curation.quality): its features, its files, and the model the package ships."""

import numpy as np
import pytest

from pixel_pipeline.curation import quality
from pixel_pipeline.curation.shaping import shape

GOOD = ("Shame tells you that you are the problem. Guilt tells you that you did something wrong. "
        "When we grow up in a home where our needs were ignored, we learn to hide. "
        "Healing starts when you notice the voice of shame and name it for what it is. ") * 3
GARBLED_TAIL = ("Zorbly fnax quorp blen sprock tavish mirn droop flerb gonk wib snarf plimp trosk vell yamber "
                "quiddle frap noxel brint sporf glimmet twarb ") * 2


def _features(text: str) -> dict:
    return quality.hand_features(text, shape(text), {"garbled": 0.1, "length": len(text.split())})


def test_a_garbled_passage_at_the_end_shows_in_the_worst_window_although_the_whole_text_looks_fine():
    clean, tail = quality.window_measures(GOOD), quality.window_measures(GOOD + GARBLED_TAIL)
    assert clean["win_non_word"] < 0.2
    assert tail["win_non_word"] > 0.5


def test_a_loop_in_the_middle_shows_in_the_worst_window():
    loop = "I am not a narcissist. " * 6
    assert quality.window_measures(GOOD + loop + GOOD)["win_loop_repeats"] >= 6
    assert quality.window_measures(GOOD)["win_loop_repeats"] < 3


def test_every_feature_is_a_finite_number_even_for_an_empty_text():
    for text in ("", GOOD, GOOD + GARBLED_TAIL):
        f = _features(text)
        assert all(np.isfinite(v) for v in f.values()), f


def test_the_cached_text_measures_give_the_same_features_as_measuring_on_demand():
    import json

    for text in ("", GOOD, GOOD + GARBLED_TAIL):
        cached = json.loads(json.dumps(quality.text_measures(text)))  # what the per-text cache hands back
        on_demand = quality.hand_features(text, shape(text), {"garbled": 0.1})
        assert quality.hand_features(text, shape(text), {"garbled": 0.1}, cached) == on_demand


def test_the_classifier_round_trips_through_safetensors_and_json_with_the_same_scores(tmp_path):
    rng = np.random.default_rng(0)
    hand = [_features(GOOD), _features(GOOD + GARBLED_TAIL)] * 10
    vectors = rng.normal(size=(20, 8))
    y = np.array([0, 1] * 10)
    model = quality.fit(hand, vectors, y, c=1.0, threshold=0.5, card={"trained_on": "fixture"})
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [quality.CARD_FILE, quality.WEIGHTS_FILE]
    loaded = quality.QualityClassifier.load(tmp_path)
    assert np.allclose(loaded.reject_probability(hand, vectors), model.reject_probability(hand, vectors))
    p = loaded.reject_probability(hand, vectors)
    assert p[1::2].mean() > p[0::2].mean()  # it learned the garbled tail


def test_an_embedding_of_another_size_is_a_clear_error(tmp_path):
    hand = [_features(GOOD)] * 4
    model = quality.fit(hand, np.eye(4), np.array([0, 1, 0, 1]), c=1.0, threshold=0.5, card={"embedding_model": "x"})
    with pytest.raises(ValueError, match="expects 4-d embeddings, got 3"):
        model.reject_probability(hand, np.zeros((4, 3)))


def test_the_shipped_classifier_reads_the_features_the_chain_computes_and_carries_its_cross_validated_figures():
    model = quality.load_default()
    assert sorted(_features(GOOD)) == model.feature_names
    assert model.embedding_dim in (0, 384)  # hand features alone, or with the MiniLM vector
    assert 0.0 < model.threshold < 1.0
    chosen = model.card["cross_validated"]["chosen"]
    assert chosen["threshold"] == model.threshold
    assert 0.0 <= chosen["reject_recall"] <= 1.0 and 0.0 <= chosen["keep_recall"] <= 1.0


def test_the_reject_floor_is_the_least_probability_at_any_domain_margin_up_to_the_ceiling():
    rng = np.random.default_rng(1)
    hand = [dict(_features(GOOD if i % 2 else GOOD + GARBLED_TAIL), rule_off_domain=float(m))
            for i, m in enumerate(rng.uniform(-0.2, 0.8, 40))]
    y = np.array([0 if h["rule_off_domain"] > 0.3 else 1 for h in hand])  # a low margin means reject
    model = quality.fit(hand, None, y, c=1.0, threshold=0.5, card={"domain_margin_ceiling": 0.8})
    floor = model.reject_floor(hand)
    for margin in (-0.2, 0.0, 0.4, 0.8):
        p = model.reject_probability([dict(h, rule_off_domain=margin) for h in hand], None)
        assert (p >= floor - 1e-12).all()
    assert quality.fit(hand, None, y, 1.0, 0.5, {}).reject_floor(hand) is None  # no ceiling recorded
    assert quality.fit(hand, None, 1 - y, 1.0, 0.5, {"domain_margin_ceiling": 0.8}).reject_floor(hand) is None  # margin raises P
    assert quality.fit(hand, np.eye(40)[:, :4], y, 1.0, 0.5, {"domain_margin_ceiling": 0.8}).reject_floor(hand) is None


def test_the_shipped_classifier_records_the_margin_ceiling_of_its_corpus():
    model = quality.load_default()
    assert 0.0 < model.card["domain_margin_ceiling"] <= 2.0  # a cosine margin
    assert model.reject_floor([_features(GOOD)]) is not None
