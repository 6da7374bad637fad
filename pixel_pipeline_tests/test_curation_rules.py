"""Each curation rule, both directions: the defect is caught by the rule meant for it, a clean look-alike survives."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pixel_pipeline.core.embeddings import Embedder
from pixel_pipeline.core.records import reason_key
from pixel_pipeline.curation import domain, filters, pii, safety
from pixel_pipeline.curation.cache import ScoreCache
from pixel_pipeline.curation.curate import CurationSettings, curate_conversations, curate_segments, judged_segments
from pixel_pipeline.curation.rules import Decisions
from pixel_pipeline.curation.ruleset import OffDomainRule, RuleContext
from pixel_pipeline_tests.test_curation_samples import (
    CLEAN,
    DEFECTS,
    LOOKALIKE,
    PII_TEXT,
    conversations_frame,
    segments_frame,
)


def fired(frame: pd.DataFrame) -> list[bool]:
    return frame["fired"].tolist()


# ---- garbled ----------------------------------------------------------------------------------------------------
def test_garbled_catches_other_scripts_inside_english_and_keeps_a_quoted_greek_word():
    out = filters.garbled([DEFECTS["garbled"], LOOKALIKE["greek_word"], *CLEAN.values()])
    assert fired(out) == [True] + [False] * (len(CLEAN) + 1)
    assert out.at[0, "reason"].startswith("garbled: foreign")
    assert out.at[0, "measures"]["foreign_script_runs"] >= 2


def test_garbled_catches_word_salad_without_foreign_script():
    salad = ("so the the uhm thhe bodyy knowss kinda ,, like , it's , yeah the the nervus sistem iss "
             "trying to to protekt , you know , uh , the the traumma respons wen it it , , "
             "feels unsaaf , and and we we can can notise itt , , gently , yeah , ") * 3
    out = filters.garbled([salad, CLEAN["practical"]])
    assert fired(out) == [True, False]


# ---- language ---------------------------------------------------------------------------------------------------
def test_language_rejects_spanish_and_keeps_english(tmp_path):
    cache = ScoreCache(tmp_path / "scores.sqlite", "test")
    texts = [DEFECTS["language"], CLEAN["grief"], LOOKALIKE["greek_word"]]
    from pixel_pipeline.curation.curate import language_detections

    detections = language_detections(texts, cache)
    out = filters.language(texts, 0.5, detections)
    assert fired(out) == [True, False, False]
    assert "'es'" in out.at[0, "reason"]
    # the second pass reads every score from the content-hash cache
    language_detections(texts, cache)
    assert cache.stats == {"hits": 3, "computed": 3}


# ---- repetition -------------------------------------------------------------------------------------------------
def test_repetition_catches_amen_loop_and_stuck_caption_but_not_a_breathing_cue():
    stuck = CLEAN["grief"][:300] + "\n" + "\n".join(["[inaudible] okay so as I was saying the the"] * 20)
    out = filters.repetition([DEFECTS["repetition"], stuck, LOOKALIKE["breathing_cue"], *CLEAN.values()])
    assert fired(out) == [True, True, False] + [False] * len(CLEAN)
    assert "'amen' repeated 20x in a row" in out.at[0, "reason"]


def test_repetition_thresholds_are_configurable():
    strict = filters.RepetitionThresholds(max_consecutive_repeats=2)
    assert fired(filters.repetition([LOOKALIKE["breathing_cue"]], strict)) == [True]


# ---- housekeeping -----------------------------------------------------------------------------------------------
def test_housekeeping_rejects_promo_segments_and_keeps_ordinary_words():
    aa_sponsor = CLEAN["boundaries"] + " My sponsor in AA told me to call him before the dinner, and I did."
    out = filters.housekeeping([DEFECTS["housekeeping"], LOOKALIKE["subscribe_belief"], aa_sponsor, CLEAN["grief"]])
    assert fired(out) == [True, False, False, False]
    assert {"sponsor", "subscribe", "live_stream"} <= set(out.at[0, "measures"]["kinds"])


def test_housekeeping_strips_a_sponsor_read_from_a_good_segment():
    read = (" Quick word from our sponsor. This episode is supported by Driftwood, the weighted blanket company. "
            "Their covers are washable and breathable. Go to driftwoodsleep.com and use code STANDING for fifteen "
            "percent off. Thanks, Driftwood. ")
    text = CLEAN["trauma"] + read + CLEAN["grief"]
    stripped, removed = filters.strip_housekeeping(text)
    assert removed == 5
    assert "Driftwood" not in stripped and "washable" not in stripped  # the sentence inside the read goes too
    assert CLEAN["grief"] in stripped
    assert not filters.housekeeping([text])["fired"].iat[0]  # 15 % of the words: strip, do not reject


# ---- length -----------------------------------------------------------------------------------------------------
def test_length_rejects_too_short_and_too_long_or_truncates():
    long_text = " ".join([CLEAN["trauma"]] * 12)  # ~2,300 words
    out = filters.length([DEFECTS["too_short"], long_text, CLEAN["grief"]], min_words=30, max_words=1400)
    assert fired(out) == [True, True, False]
    trunc = filters.length([long_text], 30, 1400, length_action="truncate")
    assert fired(trunc) == [False]
    cut = filters.truncate_words(long_text, 1400)
    assert len(cut.split()) <= 1400 and cut.endswith(".")
    with pytest.raises(ValueError):
        filters.length(["x"], length_action="split")


# ---- off_domain (embeddings) ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedder(shared_embedding_cache):
    return Embedder(cache_dir=shared_embedding_cache)


def test_off_domain_rejects_news_and_keeps_every_clean_segment(embedder):
    texts = [DEFECTS["off_domain"], *CLEAN.values(), *LOOKALIKE.values()]
    vectors = embedder.encode(texts)
    out = domain.domain_scores(vectors, embedder.encode(list(domain.DOMAIN_DESCRIPTIONS)),
                               embedder.encode(list(domain.OFF_TOPIC_DESCRIPTIONS)))
    assert fired(out) == [True] + [False] * (len(texts) - 1)
    assert "news report" in out.at[0, "reason"]
    assert out["score"].iloc[1:].min() > 0.1  # clean texts clear the margin with room to spare


def test_centroid_similarity_leaves_each_reference_row_out(embedder):
    vectors = embedder.encode(list(CLEAN.values()))
    sims = domain.centroid_similarity(vectors, [True] * len(vectors))
    full = vectors.sum(axis=0)
    naive = vectors @ (full / (full @ full) ** 0.5)
    assert (sims < naive).all()  # a text never vouches for itself
    assert domain.centroid_similarity(vectors, [True, False, False, False, False, False]) is None


# ---- harmful and crisis ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kind", [("harmful_medication", "stop_medication"), ("harmful_contempt", "contempt"),
                                       ("harmful_self_harm", "encourages_self_harm")])
def test_harmful_advice_is_rejected_with_its_kind(name, kind):
    out = safety.harmful([DEFECTS[name]])
    assert out["fired"].iat[0] and kind in out.at[0, "measures"]["kinds"]


def test_safe_look_alikes_are_not_harmful():
    critic = "The inner critic says, you're pathetic, nobody cares about you. That voice learned its words early."
    described = "Side effects are the number one reason people stop their medication, so tell your prescriber."
    out = safety.harmful([LOOKALIKE["medication_safe"], LOOKALIKE["crisis_supportive"], critic, described,
                          "You are not weak for needing help.", *CLEAN.values()])
    assert not out["fired"].any(), out.loc[out["fired"], "reason"].tolist()


def test_crisis_content_is_flagged_not_rejected():
    assert safety.crisis_flags(LOOKALIKE["crisis_supportive"]) == ["suicide"]
    assert safety.crisis_flags("She was sexually assaulted in college and still freezes.") == ["sexual_violence", "violence"]
    assert safety.crisis_flags("He noticed cuts on her arms and asked about self-harm.") == ["self_harm"]
    assert safety.crisis_flags("There was a car accident, there was an assault, there was a deployment.") == []
    assert all(safety.crisis_flags(t) == [] for t in CLEAN.values())


# ---- PII -------------------------------------------------------------------------------------------------------------
def test_pii_is_redacted_with_typed_placeholders_and_crisis_lines_stay():
    red, counts = pii.redact(PII_TEXT)
    assert counts == {"name": 1, "phone": 3, "email": 1, "url": 2, "handle": 1, "address": 1}
    for leaked in ("Sarah Johnson", "123-4567", "987.6543", "7946 0958", "dr.smith@", "healingpractice.com/booking",
                   "calmmind.org", "@calm_with_sarah", "1234 Maple Avenue"):
        assert leaked not in red
    assert "my name is [NAME]" in red and "[PHONE]" in red and "[ADDRESS]" in red
    assert "call 988 or 1-800-273-8255" in red  # public crisis lines are resources, not personal data
    assert pii.redact(PII_TEXT, keep_crisis_lines=False)[1]["phone"] == 4


def test_pii_leaves_researchers_names_numbers_and_plain_text_alone():
    text = ("Kristin Neff and John Gottman studied this in 1998; in 20 minutes, 3 times a day, my name is not "
            "important, and 4 out of 5 people said so. " + CLEAN["education"])
    assert pii.redact(text) == (text, {})


def test_conversation_turns_are_redacted_too():
    turns = json.dumps({"conversation": [{"role": "client", "content": "My name is Dana Ruiz."},
                                         {"role": "therapist", "content": "Call me at 555-214-7789."}]})
    red, counts = pii.redact_conversation_json(turns)
    assert "Dana" not in red and "214-7789" not in red and counts == {"name": 1, "phone": 1}


# ---- the whole step ------------------------------------------------------------------------------------------------
def _all_texts() -> pd.DataFrame:
    raw = segments_frame({**CLEAN, **LOOKALIKE, **DEFECTS, "pii": PII_TEXT})
    low = segments_frame({"low_quality": CLEAN["boundaries"] + " And that is the point."}, quality=0.1, style="practical")
    return pd.concat([raw, low], ignore_index=True)


def test_curate_segments_explains_every_reject_and_keeps_every_clean_text(embedder):
    """The named rules alone (the lookalikes are written to pass them); the classifier is pinned below."""
    raw = _all_texts()
    out = curate_segments(raw, CurationSettings(quality_classifier=False), embed=embedder.encode)
    assert len(out.kept) + len(out.rejects) == len(raw)
    by_name = {f.removesuffix(".txt"): rs for f, rs in zip(out.rejects["file"], out.rejects["reasons"])}
    expected = {"garbled": "garbled", "language": "language", "repetition": "repetition", "off_domain": "off_domain",
                "housekeeping": "housekeeping", "too_short": "length", "harmful_medication": "harmful",
                "harmful_contempt": "harmful", "harmful_self_harm": "harmful", "low_quality": "expert_quality"}
    assert set(by_name) == set(expected)
    for name, rule in expected.items():
        assert rule in [reason_key(r) for r in by_name[name]], (name, by_name[name])
    details = json.loads(out.rejects["details"].iat[0])
    assert set(details["scores"]) >= {"garbled", "language", "repetition", "off_domain", "harmful"} and details["snippet"]
    kept = out.kept.set_index("file")
    for name in [*CLEAN, *LOOKALIKE]:
        assert f"{name}.txt" in kept.index
    assert kept.at["trauma.txt", "text"] == CLEAN["trauma"]
    assert kept.at["subscribe_belief.txt", "housekeeping_removed"] == 1  # "Thanks for watching." stripped
    assert list(kept.at["crisis_supportive.txt", "crisis_flags"]) == ["suicide"]
    assert json.loads(kept.at["pii.txt", "pii_counts"])["phone"] == 3 and "[EMAIL]" in kept.at["pii.txt", "text"]
    assert {f"score_{r}" for r in ("shaping", "garbled", "language", "repetition", "off_domain", "housekeeping", "length",
                                   "harmful", "expert_quality", "quality_classifier")} <= set(out.kept.columns)
    assert out.report["rejected_by_rule"]["harmful"] == 3 and out.report["examples"]["off_domain"]
    assert out.report["quality_classifier"] == "off (quality_classifier=False)"


def test_the_quality_classifier_only_adds_rejects_each_with_its_probability(embedder):
    raw = _all_texts()
    rules = curate_segments(raw, CurationSettings(quality_classifier=False), embed=embedder.encode)
    both = curate_segments(raw, CurationSettings(), embed=embedder.encode)
    assert set(rules.rejects["segment_id"]) <= set(both.rejects["segment_id"])
    assert both.kept["score_quality_classifier"].between(0, 1).all()
    added = both.rejects[~both.rejects["segment_id"].isin(rules.rejects["segment_id"])]
    for reasons in added["reasons"]:
        assert [reason_key(r) for r in reasons] == ["quality_classifier"] and "P(reader rejects)" in reasons[0]
    strict = curate_segments(raw, CurationSettings(quality_threshold=0.0), embed=embedder.encode)
    assert len(strict.kept) == 0  # the threshold is the setting it says it is


def test_only_segments_the_per_text_rules_kept_are_embedded_and_the_decisions_are_those_of_embedding_all(embedder):
    raw = _all_texts()
    calls: list[list[str]] = []

    def counting(texts):
        calls.append(list(texts))
        return embedder.encode(texts)

    every = judged_segments(raw, CurationSettings(), embedder.encode, embed_all=True)
    cheap_first = judged_segments(raw, CurationSettings(reject_before_embedding=False), counting)
    item_fired = np.any([cheap_first.rules[r]["fired"].to_numpy(bool) for r in cheap_first.rules
                         if r not in ("off_domain", "quality_classifier")], axis=0)
    reference = OffDomainRule(CurationSettings(), RuleContext()).reference(cheap_first)
    seen = calls[0]  # the segments' texts (off_domain then embeds its domain descriptions)
    assert item_fired.any() and len(seen) == int((~item_fired | reference).sum()) < len(raw)
    assert cheap_first.stats["embedded"] == len(seen)
    assert np.array_equal(Decisions.of(every.rules, len(raw)).rejected, Decisions.of(cheap_first.rules, len(raw)).rejected)
    for rule in ("off_domain", "quality_classifier"):
        scored = cheap_first.rules[rule]["score"].notna().to_numpy()
        assert np.array_equal(scored, ~item_fired | reference)  # not scored: rejected by a cheaper rule first
        assert np.allclose(every.rules[rule]["score"][scored], cheap_first.rules[rule]["score"][scored])


def test_rows_the_classifier_rejects_at_any_domain_margin_are_not_embedded_and_every_decision_stays_the_same(embedder):
    raw = _all_texts()
    every = judged_segments(raw, CurationSettings(), embedder.encode, embed_all=True)
    cascade = judged_segments(raw, CurationSettings(reject_before_embedding=False), embedder.encode)
    pruned = judged_segments(raw, CurationSettings(), embedder.encode)
    floor = pruned.reject_floor
    unembedded = ~np.isnan(floor)
    assert pruned.stats["rejected_before_embedding"] == int(unembedded.sum()) > 0
    assert pruned.stats["embedded"] == cascade.stats["embedded"] - int(unembedded.sum())
    assert np.array_equal(Decisions.of(every.rules, len(raw)).rejected, Decisions.of(pruned.rules, len(raw)).rejected)
    full_p = every.rules["quality_classifier"]["score"].to_numpy()
    assert (floor[unembedded] <= full_p[unembedded] + 1e-9).all()  # a floor: the embedded row scores at least that
    for reason in pruned.rules["quality_classifier"]["reason"][unembedded]:
        assert "at any domain margin up to" in reason and "not embedded" in reason
    assert pruned.rules["off_domain"]["score"][unembedded].isna().all()  # not scored without a vector


def test_curate_conversations_redacts_flags_and_rejects_harmful_answers():
    conv = conversations_frame([
        ("My name is Dana Ruiz and I can't sleep.", "Try a wind-down routine; my office line is (555) 214-7789."),
        ("I keep thinking about suicide.", LOOKALIKE["crisis_supportive"]),
        ("Should I stop my meds?", "Just stop taking the pills this week, you don't need them. Stop whining."),
        ("Hi", ""),
    ])
    out = curate_conversations(conv, CurationSettings())
    assert len(out.kept) + len(out.rejects) == 4
    reasons = dict(zip(out.rejects["record_id"], out.rejects["reasons"]))
    assert "harmful" in [reason_key(r) for r in reasons[conv.at[2, "record_id"]]]
    assert "length" in [reason_key(r) for r in reasons[conv.at[3, "record_id"]]]
    kept = out.kept.set_index("record_id")
    first = kept.loc[conv.at[0, "record_id"]]
    assert "[NAME]" in first["prompt"] and "[PHONE]" in first["response"] and "Dana" not in first["conversation"]
    assert json.loads(first["pii_counts"]) == {"name": 1, "phone": 1}
    assert list(kept.loc[conv.at[1, "record_id"], "crisis_flags"]) == ["suicide"]


def test_whole_text_prechecks_never_hide_a_sentence_level_match():
    """The fast pre-checks must be supersets of the per-sentence patterns, or a promo / harmful sentence would slip."""
    import re

    sentences_ = [s for t in [*CLEAN.values(), *LOOKALIKE.values(), *DEFECTS.values()] for s in re.split(r"(?<=[.!?])\s+", t)]
    sentences_ += ["Stop taking your meds tomorrow.", "Thanks, Driftwood.", "Use code HEAL40 at checkout."]
    for sent in sentences_:
        text = "Some calm context first. " + sent + " And then we go on."
        if any(rx.search(sent) for rx in filters._HOUSEKEEPING_RES.values()):
            assert filters._HOUSEKEEPING_ANY.search(text), sent
        if any(rx.search(sent) for rx in safety._HARMFUL_RES.values()):
            assert safety._HARMFUL_ANY.search(text), sent
    assert safety.harmful_hits("I hear you. Stop taking your meds tomorrow.") != []


# ---- the rule shape: one judgement per item, one ordered list, every fired rule recorded ----------------------------
def test_every_rule_is_listed_once_and_conversations_use_the_same_order():
    from pixel_pipeline.curation import curate, ruleset

    names = [r.name for r in ruleset.RULES]
    assert len(set(names)) == len(names) and curate.SEGMENT_RULES == tuple(names)
    assert list(curate.CONVERSATION_RULES) == [n for n in names if n in curate.CONVERSATION_RULES]
    assert [r.name for r in ruleset.rules_for(CurationSettings(), ruleset.RuleContext(segments=False))] == list(
        curate.CONVERSATION_RULES)


def test_a_reject_lists_every_rule_that_fired_in_rule_order():
    advice = "Just stop taking the pills this week, you don't need them."  # harmful and too short
    out = curate_segments(segments_frame({"advice": advice}, quality=0.1), CurationSettings(quality_classifier=False))
    reasons = out.rejects["reasons"].iat[0]
    assert [reason_key(r) for r in reasons] == ["length", "harmful", "expert_quality"]
    assert json.loads(out.rejects["details"].iat[0])["rules"] == ["length", "harmful", "expert_quality"]
    assert out.report["rejected_by_this_rule_only"] == {}  # three rules fired: none is the only reason


def test_judge_all_runs_item_rules_before_batch_rules_and_keeps_a_rule_judged_while_preparing():
    from dataclasses import dataclass, field

    from pixel_pipeline.curation.rules import ItemRule, Judgement, Rule, RuleScores, judge_all, judgements_frame

    class Short(ItemRule):
        name = "short"

        def judge(self, text):
            return Judgement(keep=len(text) > 3, reason=None if len(text) > 3 else "short: under 4 letters",
                             score=float(len(text)))

    class Prepared(Short):
        name = "prepared"

        def judge(self, text):
            raise AssertionError("judged while preparing: must not run again")

    class SeesShort(Rule):  # a batch rule listed first still reads the item rule's judgement
        name = "sees_short"

        def judge_batch(self, batch, scores):
            fired = batch.rules["short"]["fired"].tolist()
            return judgements_frame(Judgement(keep=not f, reason="sees_short: a short text" if f else None) for f in fired)

    @dataclass
    class Batch:
        as_read: list
        rules: dict = field(default_factory=dict)

    batch = Batch(["ok text", "no"], rules={"prepared": judgements_frame([Judgement(keep=True)] * 2)})
    judged = judge_all([SeesShort(), Prepared(), Short()], batch, RuleScores(None))
    assert list(judged) == ["sees_short", "prepared", "short"]
    assert judged["sees_short"]["fired"].tolist() == [False, True] == judged["short"]["fired"].tolist()


def test_an_item_rule_reads_the_same_through_the_cache_and_a_new_threshold_is_a_new_key(tmp_path):
    from pixel_pipeline.curation.rules import RuleScores
    from pixel_pipeline.curation.ruleset import GarbledRule, RuleContext

    texts = [DEFECTS["garbled"], CLEAN["grief"], CLEAN["grief"]]
    rule = GarbledRule(CurationSettings(), RuleContext())
    uncached = rule.judge_many(texts, RuleScores(None))
    scores = RuleScores(ScoreCache(tmp_path / "scores.sqlite", "rules"))
    for _ in range(2):
        cached = rule.judge_many(texts, scores)
        pd.testing.assert_frame_equal(cached, uncached)
    assert scores.stats == {"hits": 3, "computed": 2}  # duplicates computed once, the second pass all hits
    strict = GarbledRule(CurationSettings(max_non_word_share=0.01), RuleContext())
    strict.judge_many(texts, scores)
    assert scores.stats["computed"] == 4


def test_a_rule_judges_one_text_as_its_batch_form_judges_it():
    from pixel_pipeline.curation.rules import Judgement, judgements_frame
    from pixel_pipeline.curation.ruleset import RULES, ItemRule, RuleContext

    texts = [DEFECTS["harmful_contempt"], DEFECTS["garbled"], DEFECTS["too_short"], CLEAN["grief"]]
    for rule in (r(CurationSettings(), RuleContext()) for r in RULES):
        if isinstance(rule, ItemRule) and rule.reads == "as_read":
            one_by_one = judgements_frame(rule.judge(t) for t in texts)
            pd.testing.assert_frame_equal(one_by_one, rule.judge_texts(texts), obj=rule.name)
    kept = Judgement(keep=True, score=0.5, measures={"x": 1})
    assert Judgement.from_row(kept.row()) == kept and kept.row()["fired"] is False


# ---- religious: a sermon or prayer is not an answer to a mental-health question ------------------------------------
def test_a_retold_scripture_story_is_rejected_as_religious_and_the_reason_names_its_words():
    sermon = ("When Nehemiah heard that the walls of Jerusalem were broken, he wept and prayed for days. "
              "Like Moses before Pharaoh, he went to the king. The Lord gave him favour, and the temple was rebuilt. "
              "So when you face your own broken walls, remember that story and keep going. " * 2)
    j = filters.judge_religious(sermon)
    assert not j.keep and j.reason.startswith("religious:") and "nehemiah" in j.reason
    assert j.measures["scripture_words"] >= 10 and j.score > 1


def test_a_passing_mention_of_faith_in_a_therapeutic_answer_is_kept():
    answer = ("Shame tells you that you are the problem, while guilt says you did something wrong. Many of my clients "
              "grew up in homes where love depended on performance, and some found support in their faith community "
              "later on. Healing starts when you notice the inner critic and answer it with the kindness you would "
              "offer a friend. Over time the nervous system learns that it is safe to rest, and the old patterns "
              "lose their grip. Write down one moment each day where you treated yourself with patience.")
    j = filters.judge_religious(answer)
    assert j.keep and j.measures["scripture_words"] == 1 and j.score < 1


def test_the_religious_rule_judges_segments_but_not_a_counseling_clients_words():
    from pixel_pipeline.curation import ruleset

    names = [r.name for r in ruleset.rules_for(CurationSettings(), ruleset.RuleContext(segments=False))]
    assert "religious" in [r.name for r in ruleset.RULES] and "religious" not in names
    strict = ruleset.ReligiousRule(CurationSettings(max_scripture_per_100_words=50.0), ruleset.RuleContext())
    assert strict.judge("Pray, pray, pray to God and the Lord in church every day.").keep
    loose = ruleset.ReligiousRule(CurationSettings(min_scripture_words=1), ruleset.RuleContext())
    assert not loose.judge("I found strength in my faith community.").keep  # 1 in 6 words, no floor on the count
