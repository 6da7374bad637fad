"""The prompt rules, the specificity metric, the model-free parts of the generators and generate_prompts' candidate
steps (no embedding model here; the POS tagger runs where a test says so). Talk questions, concepts and forms:
test_prompts_questions.py."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from pixel_pipeline.prompts.generators import Candidate, adapt_client_question, clean_generated_question
from pixel_pipeline.prompts.rules import (
    BARE_KEYWORD,
    COPIED_NGRAM,
    NOT_A_QUESTION,
    STATEMENT_NOT_FIRST_PERSON,
    TOO_LONG,
    TOO_SHORT,
    PromptRules,
    has_copied_ngram,
)
from pixel_pipeline.prompts.scoring import (
    OPENING_NOT_ABOUT_IT,
    CandidatePool,
    count_rule_failures,
    flatten_candidates,
    gate_on_opening,
)
from pixel_pipeline.prompts.selection import acceptable, rank_candidates, reject_reason
from pixel_pipeline.prompts.settings import PromptSettings
from pixel_pipeline.prompts.specificity import BM25Index, bm25_tokens, recall_at_1
from pixel_pipeline.prompts.text import distinct_n, distinct_ratio, words

RESPONSE = (
    "When we talk about complex trauma, the nervous system learned to stay on guard. Hypervigilance was not a "
    "flaw, it was a survival strategy, and healing means teaching the body that the danger is over."
)
rules = PromptRules()


def test_a_grounded_client_question_passes_every_rule():
    prompt = "I grew up always on guard and now I can't relax. How does complex trauma change the nervous system?"
    assert rules.violations(prompt, RESPONSE) == []


@pytest.mark.parametrize(
    ("prompt", "broken"),
    [
        ("Why trauma?", TOO_SHORT),
        ("How do I " + "really " * 60 + "heal?", TOO_LONG),
        ("Tell me about complex trauma and the nervous system please", NOT_A_QUESTION),
        ("How do I heal from complex trauma? I keep feeling unsafe.", NOT_A_QUESTION),
        ("Complex trauma changes people. How does the nervous system recover from it?", STATEMENT_NOT_FIRST_PERSON),
        ("Can you say why hypervigilance was not a flaw, it was a survival strategy?", COPIED_NGRAM),
        ("What do you think about trauma, can you tell me?", BARE_KEYWORD),
    ],
)
def test_each_rule_catches_what_it_is_named_for(prompt, broken):
    assert broken in rules.violations(prompt, RESPONSE)


def test_a_first_person_statement_followed_by_a_question_is_allowed():
    prompt = "I've been on guard since childhood. Is hypervigilance something the body can unlearn?"
    assert rules.violations(prompt, RESPONSE) == []
    story = "My husband drinks every night. He yells when he is drunk. How do I keep the kids safe?"
    assert rules.violations(story, RESPONSE) == []


def test_five_copied_words_are_fine_six_are_not():
    five = "Is it true that hypervigilance was not a flaw for me?"  # "hypervigilance was not a flaw": 5 words
    six = "Why was hypervigilance not a flaw, it was a survival strategy?"
    assert COPIED_NGRAM not in rules.violations(five, RESPONSE)
    assert COPIED_NGRAM in rules.violations(six, RESPONSE)
    assert "a flaw it was a survival" in rules.copied_runs(six, RESPONSE)
    assert has_copied_ngram([five, six], [RESPONSE, RESPONSE]) == [1]


def test_bm25_matrix_scores_equal_rank_bm25():
    docs = [RESPONSE, "Grief after losing a parent does not follow a schedule.", "Box breathing calms panic at work."]
    index = BM25Index(docs)
    okapi = BM25Okapi([bm25_tokens(d) for d in docs])
    for query in ["complex trauma healing", "losing a parent grief grief", "panic breathing at work", "nothing shared"]:
        np.testing.assert_allclose(index.scores([query])[0], okapi.get_scores(bm25_tokens(query)), rtol=1e-9)


def test_specificity_rewards_prompts_that_name_their_answer():
    responses = [
        "Complex trauma keeps the nervous system on guard; hypervigilance was a survival strategy.",
        "Grief after losing a parent has no schedule; anniversaries and birthdays bring it back.",
        "For panic at work try box breathing: in for four, hold for four, out for four.",
    ]
    grounded = [
        "Why is my nervous system always on guard after complex trauma?",
        "Is it normal that grief comes back on anniversaries after losing a parent?",
        "Does box breathing help with panic at work?",
    ]
    topic_word = ["What are the most effective approaches for dealing with recovery?"] * 3
    assert recall_at_1(grounded, responses) == 1.0
    assert recall_at_1(topic_word, responses) == 0.0


def test_ties_do_not_count_as_found():
    index = BM25Index(["same words here", "same words here"])
    assert index.ranks(["same words"], [0])[0] == 2


def test_bm25_ranks_do_not_depend_on_how_the_queries_are_chunked():
    docs = [f"shame guilt word{i} " * (1 + i % 3) + "trauma" for i in range(40)]
    queries, targets = [f"word{i} shame" for i in range(40)], list(range(40))
    index = BM25Index(docs)
    whole = index.ranks(queries, targets)
    np.testing.assert_array_equal(index.ranks(queries, targets, max_cells=len(docs) * 3), whole)  # 3 queries a chunk
    np.testing.assert_array_equal(index.ranks(queries, targets, max_cells=1), whole)  # one a chunk
    assert (whole == 1).mean() > 0.5


def test_distinct_metrics():
    assert distinct_ratio(["How do I heal?", "how do i HEAL ?", "What is grief?"]) == pytest.approx(2 / 3)
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)


def test_long_client_posts_keep_their_question_within_the_word_limit():
    post = " ".join(["My week was long and I worked late every night."] * 8) + " How do I stop feeling so drained?"
    adapted, change = adapt_client_question(post)
    assert adapted.endswith("How do I stop feeling so drained?")
    assert len(words(adapted)) <= 60 and "kept the last sentences" in change
    no_question = " ".join(["I worked late every night this week and my son barely talks to me."] * 4)  # 56 words
    adapted, change = adapt_client_question(no_question)
    assert len(words(adapted)) <= 60 and adapted.endswith("?") and change == "kept the last sentences; appended a question"


def test_a_first_person_statement_gets_a_question_and_nothing_else_is_invented():
    adapted, change = adapt_client_question("I have felt empty for months since my divorce.")
    assert adapted.startswith("I have felt empty for months since my divorce. ") and adapted.endswith("?")
    assert change == "appended a question"
    third_person, change = adapt_client_question("Trauma affects everyone differently.")
    assert third_person == "Trauma affects everyone differently." and change == ""


def test_generated_text_is_cut_to_the_question():
    assert clean_generated_question('Question: "Why do I freeze when people shout?" Because...') == "Why do I freeze when people shout?"
    assert clean_generated_question("\n\nno question here\nsecond line") == "no question here"


def test_a_response_may_restate_its_own_question_but_a_prompt_may_not_copy_its_answer():
    response = (
        "So why do we keep going back to the people who hurt us. The pull is not weakness, it is the nervous system "
        "reading intensity as connection, and calm as danger."
    )
    restated = "Why do we keep going back to the people who hurt us?"
    copying = "Is it true that the nervous system reading intensity as connection is why I go back?"
    assert COPIED_NGRAM not in rules.violations(restated, response)
    assert COPIED_NGRAM in rules.violations(copying, response)
    assert has_copied_ngram([restated, copying], [response, response]) == [1]


# ---- the candidate steps of generate_prompts (scoring.py, selection.py), on hand-made candidates and scores


def pool_of(flat, alignment, score, violations=None):
    n = len(flat)
    return CandidatePool(
        flat=flat, violations=violations or [[] for _ in flat], prompts=[c.prompt for _, c in flat],
        alignment=np.asarray(alignment, dtype=np.float64), opening=np.full(n, 0.7), ranks=np.ones(n, dtype=np.int64),
        cross=None, score=np.asarray(score, dtype=np.float64), bm25=None,
    )


def test_a_prompt_is_kept_once_per_segment_case_and_punctuation_ignored():
    ask, again, other = Candidate("Why do I freeze?", "talk"), Candidate("why do i freeze", "concepts"), Candidate("How do I heal?", "talk")
    assert flatten_candidates([[ask, again, other], [again]]) == [(0, ask), (0, other), (1, again)]


def test_a_candidate_the_opening_is_not_about_breaks_a_rule_counted_after_the_prompt_rules():
    flat = [(0, Candidate("Why?", "talk")), (0, Candidate("How do I stop freezing when people shout at me?", "concepts"))]
    pool = pool_of(flat, [0.5, 0.5], [0.5, 0.5], violations=[[TOO_SHORT], []])
    pool.opening[:] = [0.1, 0.9]
    failures = count_rule_failures(flat, pool.violations)
    gate_on_opening(pool, failures, opening_floor=0.62)
    assert pool.violations == [[TOO_SHORT, OPENING_NOT_ABOUT_IT], []]
    assert {g: dict(c) for g, c in failures.items()} == {"talk": {TOO_SHORT: 1, OPENING_NOT_ABOUT_IT: 1}}


def test_the_talks_own_question_outranks_a_better_scored_concept_form_and_a_used_prompt_pays_the_penalty():
    flat = [(0, Candidate("What does grief mean for someone who lost a parent?", "concepts")),
            (0, Candidate("Why does grief come back on birthdays?", "talk"))]
    ranked, adjusted = rank_candidates(pool_of(flat, [0.8, 0.5], [0.9, 0.6]), [0, 1], Counter(), reuse_penalty=0.15)
    assert ranked == [1, 0]
    _, adjusted = rank_candidates(pool_of(flat, [0.8, 0.5], [0.9, 0.6]), [0, 1], Counter({"why does grief come back on birthdays": 2}), 0.15)
    assert round(adjusted[1], 4) == 0.3


def test_a_segment_without_a_question_is_rejected_with_the_reason_that_applies():
    settings = PromptSettings()
    flat = [(0, Candidate("Why does grief come back on birthdays?", "talk"))]
    pool = pool_of(flat, [0.2], [0.4])
    above, taken = acceptable(pool, [0], Counter(), settings)
    assert above == [] and not taken
    reason, details = reject_reason(pool, [0], [0], {0: 0.4}, taken, settings, ["talk"], {})
    assert reason.startswith("alignment_below_floor") and details["best"]["alignment"] == 0.2
    used = Counter({"why does grief come back on birthdays": 1})
    above, taken = acceptable(pool_of(flat, [0.9], [0.9]), [0], used, settings)
    assert above == [] and taken
    assert reject_reason(pool_of(flat, [0.9], [0.9]), [0], [0], {}, True, settings, [], {})[0].startswith("prompt_already_used")
    assert reject_reason(pool_of([], [], []), [], [], {}, False, settings, ["talk"], {})[0].startswith("no_acceptable_question")
    broken = pool_of(flat, [0.9], [0.9], violations=[[TOO_SHORT]])
    reason, details = reject_reason(broken, [0], [], {}, False, settings, ["talk"], {})
    assert reason.startswith("no_valid_prompt") and details["rule_failures"] == {TOO_SHORT: 1}

