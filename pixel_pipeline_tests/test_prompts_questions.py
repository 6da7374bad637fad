"""Where questions come from: the talk's own questions, the field vocabulary's concepts and the forms they fill.

No embedding model here; the POS tagger (spaCy en_core_web_sm) runs where the slot of a form is checked.
"""

from __future__ import annotations

import random

import pytest

from pixel_pipeline.prompts.concepts import Concept, central_concepts, linked_concept, load_vocabulary, term_mentions
from pixel_pipeline.prompts.generators import ConceptTemplateGenerator, SegmentInput, TalkQuestionGenerator
from pixel_pipeline.prompts.rules import PromptRules
from pixel_pipeline.core.tagger import slot_problem, slot_tags, tag
from pixel_pipeline.prompts.talk_questions import PosedQuestion, TalkQuestionRules, client_voice, posed_questions, screen
from pixel_pipeline.prompts.templates import (
    FORMS,
    GENERAL,
    LINKED_FORMS,
    all_forms,
    concept_forms,
    fill,
    fill_linked,
    segment_intent,
)
from pixel_pipeline_tests.test_prompts_asset import SEGMENTS

ANSWER = " ".join(["The answer goes on here with plenty of words about it."] * 10)  # 100 words


def voiced(question: str) -> str | None:
    return client_voice(question, tag([question])[0])


# ---- the talk's own questions


def test_questions_are_recognised_by_their_shape_without_question_marks():
    text = "So why do we keep going back to toxic relationships. The pull is strong. Can you heal from shame. I think so."
    found = [q.text for q in posed_questions(text)]
    assert found == ["why do we keep going back to toxic relationships", "Can you heal from shame"]
    assert posed_questions("What I want to say is simple. When I was a kid we moved.") == []


def test_a_question_the_talk_was_asked_loses_its_introduction():
    text = "A lot of you ask me, what is the difference between shame and guilt. " + ANSWER
    assert [q.text for q in posed_questions(text)] == ["what is the difference between shame and guilt"]


def test_the_audiences_you_becomes_the_clients_i():
    assert voiced("how do you know if you're in a trauma bond") == "How do I know if I'm in a trauma bond?"
    assert voiced("Are you afraid of your own anger") == "Am I afraid of my own anger?"
    assert voiced("Why is it so hard for you to set boundaries") == "Why is it so hard for me to set boundaries?"


def test_a_question_put_to_the_educator_keeps_its_you():
    question = "can you talk about the trouble with therapy when it comes to abuse"
    assert voiced(question) == "Can you talk about the trouble with therapy when it comes to abuse?"
    assert voiced("how many of the people that you treated have childhood trauma").startswith("How many of the people that you")


def test_a_restart_or_a_name_is_not_clean_speech():
    assert voiced("Is that Are you optimistic about therapy") is None
    assert voiced("Why did Leonardo da Vinci study shame") is None


ANSWERED = (
    "Toxic relationships feel like home when love came and went. Toxic relationships keep that rhythm. Trauma and "
    "shame do that: trauma teaches the body to expect it, shame says you deserve it, and anxiety keeps anxiety alive."
)


@pytest.mark.parametrize(
    ("text", "words_before", "words_after", "follows", "reason"),
    [
        ("why is that", 0, 100, ANSWERED, "too_short"),
        ("why do we keep going back to toxic relationships", 0, 20, ANSWERED, "no_answer_follows"),
        ("why do we keep going back to toxic relationships", 250, 100, ANSWERED, "late_in_segment"),
        ("what are we going to talk about today on shame", 0, 100, ANSWERED, "about_the_talk"),
        ("why does she keep going back to her toxic relationships", 0, 100, ANSWERED, "third_person_story"),
        ("how does that affect your anxiety every day", 0, 100, ANSWERED, "points_back"),
        ("how do you put boundaries around that if you're in that type of relationship", 0, 100, ANSWERED, "points_back"),
        ("how do we stop doing this when toxic relationships feel like home", 0, 100, ANSWERED, "points_back"),
        ("why did the kids jump off the dock again", 0, 100, ANSWERED, "no_field_topic"),
        ("did you grow up with toxic relationships at home", 0, 100, ANSWERED, "addressed_to_the_audience"),
        ("why do we keep going back to toxic relationships", 0, 100, "Let me tell you about my weekend.", "topic_not_answered"),
        ("what can happen after trauma is you can have flashbacks", 0, 100, ANSWERED, "not_a_real_question"),
        ("what is wild about shame is that it hides", 0, 100, ANSWERED, "not_a_real_question"),
    ],
)
def test_a_posed_question_is_screened_for_what_a_client_could_ask(text, words_before, words_after, follows, reason):
    question = PosedQuestion(text, 0, len(text), words_before, words_after, follows)
    assert screen(question, TalkQuestionRules(), term_mentions) == reason


def test_an_early_question_on_a_field_topic_answered_after_it_passes():
    question = PosedQuestion("why do we keep going back to toxic relationships", 0, 48, 0, 100, ANSWERED)
    assert screen(question, TalkQuestionRules(), term_mentions) is None


def test_the_talk_generator_proposes_the_posed_questions_of_the_fixture():
    segments = [SegmentInput(f"s{i}", text, style) for i, (style, text) in enumerate(SEGMENTS)]
    found = {s.segment_id: [c.prompt for c in cands] for s, cands in zip(segments, TalkQuestionGenerator().generate(segments))}
    assert found["s2"] == ["Why do we keep going back to toxic relationships, even when we know they hurt us?"]
    assert found["s3"] == ["What is the difference between shame and guilt?"]
    assert found["s7"] == ["How do I calm panic attacks when they hit me at work?"]
    assert not any(found[k] for k in ("s0", "s1", "s4", "s5", "s6"))


# ---- concepts from the field vocabulary


def test_the_field_vocabulary_is_a_well_formed_data_file(tmp_path):
    vocabulary = load_vocabulary()
    assert len(vocabulary) > 200 and set(vocabulary.values()) == {"struggle", "practice", "topic", "person"}
    bad = tmp_path / "vocabulary.tsv"
    bad.write_text("shame\tfeeling\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vocabulary.tsv:1"):
        load_vocabulary(bad)
    empty = tmp_path / "empty.tsv"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        load_vocabulary(empty)


def test_a_longer_term_counts_for_the_terms_inside_it():
    counts = term_mentions("Complex trauma is not one event. Complex-trauma survivors and trauma.")
    assert counts["complex trauma"] == 2 and counts["trauma"] == 3


def test_a_segment_is_about_a_concept_it_names_often_and_densely():
    assert [c.term for c in central_concepts(SEGMENTS[0][1])] == ["complex trauma", "trauma"]
    assert central_concepts(SEGMENTS[5][1]) == []  # the lake: no field term at all
    passing = "Shame came up once. " + " ".join(["Other words fill this talk about the weekend."] * 80)
    assert central_concepts(passing + " shame shame", min_mentions=3) == []  # three mentions in 640 words


@pytest.mark.parametrize(
    ("opening", "term", "intent"),
    [
        ("Shame is a belief about who I am.", "shame", "definition"),
        ("Over and over we find that relapse is a slow slide before any drink.", "relapse", "definition"),
        ("Codependency describes a way of living around another person's needs.", "codependency", "definition"),
        ("Shame comes from being told you are too much.", "shame", "origin"),
        ("Healing from shame starts with telling one safe person.", "shame", "healing"),
        ("Here is how to work on boundaries: start with one sentence.", "boundaries", "steps"),
        ("Shame makes people hide the very thing that would heal them.", "shame", "effects"),
        ("We will get to shame in a moment.", "shame", GENERAL),
        ("We will get to that in a moment.", "shame", None),
    ],
)
def test_the_form_follows_what_the_segments_opening_says_about_the_concept(opening, term, intent):
    assert segment_intent(opening + " " + ANSWER, term) == intent


def test_forms_agree_with_the_concepts_number():
    singular, _ = fill("Why {is} {a} so hard for some of us?", Concept("self-compassion", "practice", 3))
    plural, span = fill("Why {is} {a} so hard for some of us?", Concept("boundaries", "practice", 3))
    assert singular == "Why is self-compassion so hard for some of us?" and plural == "Why are boundaries so hard for some of us?"
    assert plural[span[0] : span[1]] == "boundaries"
    asked, _ = fill("How do I deal with {a} in my own life?", Concept("trauma bond", "struggle", 3, "a trauma bond"))
    assert asked == "How do I deal with a trauma bond in my own life?"


def test_every_form_filled_with_a_plain_concept_passes_the_prompt_rules():
    rules = PromptRules()
    plain = {"struggle": Concept("shame", "struggle", 3), "practice": Concept("boundaries", "practice", 3),
             "topic": Concept("attachment styles", "topic", 3), "person": Concept("narcissist", "person", 3, "a narcissist")}
    for kind, _intent, form in all_forms():
        question, _ = fill(form, plain[kind])
        assert rules.violations(question) == [], question
    assert all(len(FORMS[k][i]) >= 2 for k in FORMS for i in FORMS[k])


def test_a_person_is_never_called_it_and_forms_agree_with_the_concepts_number():
    for concept in (Concept("narcissist", "person", 3, "a narcissist"), Concept("narcissists", "person", 3)):
        for intent in FORMS["person"]:
            for question, _ in concept_forms(concept, intent, 10, random.Random(1)):
                assert " it " not in f" {question.lower().rstrip('?')} ", question
    assert "why they matter?" in " ".join(q for q, _ in concept_forms(Concept("boundaries", "topic", 3), "general", 10, random.Random(1)))
    general = " ".join(q for q, _ in concept_forms(Concept("fears", "struggle", 3), "general", 10, random.Random(1)))
    assert "what is they" not in general and "what are they really about" in general
    origin = " ".join(q for q, _ in concept_forms(Concept("boundaries", "topic", 3), "origin", 10, random.Random(1)))
    assert "how does they" not in origin and "how do they develop" in origin


def test_one_concept_per_form_seeded_by_the_segment():
    concept = Concept("shame", "struggle", 4)
    first = concept_forms(concept, "origin", 3, random.Random("13:a"))
    assert first == concept_forms(concept, "origin", 3, random.Random("13:a"))
    assert len({q for q, _ in first}) == 3 and all(q.count("shame") == 1 for q, _ in first)


@pytest.mark.parametrize(
    ("prompt", "slot", "problem"),
    [
        ("In my healing journey I keep running into unhealthy. What do I do?", "unhealthy", "adjective"),
        ("What do pain and develop have to do with healing?", "develop", "verb"),
        ("I'm exhausted from dealing with John Mark. Does anyone else struggle?", "John Mark", "name"),
        ("How do I heal from complex trauma?", "complex trauma", None),
        ("What can I do about PTSD at night?", "PTSD", None),
    ],
)
def test_the_tagger_reads_what_a_concept_slot_holds(prompt, slot, problem):
    start = prompt.index(slot)
    assert slot_problem(slot_tags(tag([prompt])[0], start, start + len(slot))) == problem


def test_no_written_concept_form_holds_a_verb_adjective_or_name_in_its_slot():
    segments = [SegmentInput(f"s{i}", text, style) for i, (style, text) in enumerate(SEGMENTS)]
    generator = ConceptTemplateGenerator()
    out = generator.generate(segments)
    prompts = [c for cands in out for c in cands]
    assert len(prompts) >= 8 and {c.key_concepts[0] for c in prompts} >= {"complex trauma", "attachment styles", "grief", "boundaries"}
    for cand, tokens in zip(prompts, tag([c.prompt for c in prompts])):
        term = cand.key_concepts[0]
        start = cand.prompt.lower().index(term)
        assert slot_problem(slot_tags(tokens, start, start + len(term))) is None, cand.prompt
    assert out[5] == [] and generator.stats["no_central_concept"] >= 1  # the lake names no field concept


LINKED = ("In my work, complex trauma and anger come up together in almost every session. " +
          "With complex trauma, the anger stays with a person for years. " * 3)


def test_a_second_concept_is_linked_only_when_the_opening_names_both_in_one_sentence():
    trauma = Concept("complex trauma", "struggle", 4)
    assert linked_concept(LINKED, trauma).term == "anger"
    assert linked_concept("Complex trauma causes anger problems. Anger again. " * 2, trauma).term == "anger"
    apart = "Complex trauma shapes a child. " + "Anger comes later, and anger is a shield. " * 3
    assert linked_concept(apart, trauma) is None  # never in the same sentence as the concept
    once = "Complex trauma creates anger issues. " + "Complex trauma teaches a child to hide. " * 3
    assert linked_concept(once, trauma) is None  # named once: the segment does not develop it
    inside = "Complex trauma is trauma that repeats. " + "Trauma and complex trauma again. " * 3
    assert linked_concept(inside, trauma) is None  # "trauma" is part of the concept, not a second one
    narcissist = Concept("narcissist", "person", 4, "a narcissist")
    assert linked_concept("A narcissist breeds shame. Shame grows. Shame hides.", narcissist) is None


def test_linked_forms_name_both_concepts_as_noun_phrases_and_pass_the_prompt_rules():
    rules = PromptRules()
    shame, trauma = Concept("shame", "struggle", 3), Concept("complex trauma", "struggle", 3)
    boundaries = Concept("boundaries", "practice", 3)
    for other in (trauma, boundaries):
        for form in LINKED_FORMS:
            question, spans = fill_linked(form, shame, other)
            assert [question[a:b] for a, b in spans] == ["shame", other.term]
            assert rules.violations(question) == [], question
            tokens = tag([question])[0]
            assert not any(slot_problem(slot_tags(tokens, a, b)) for a, b in spans), question


def test_a_segment_that_links_two_concepts_without_a_claim_gets_a_question_about_both():
    candidates = ConceptTemplateGenerator().generate([SegmentInput("s1", LINKED, "therapeutic")])[0]
    linked = [c for c in candidates if len(c.key_concepts) == 2]
    assert linked and all("complex trauma" in c.prompt.lower() and "anger" in c.prompt for c in linked), candidates
    claim = "Complex trauma causes anger problems for many people. " + "Complex trauma and anger last for years. " * 3
    candidates = ConceptTemplateGenerator().generate([SegmentInput("s2", claim, "therapeutic")])[0]
    linked = [c.key_concepts for c in candidates if len(c.key_concepts) == 2]
    assert linked and all(k[0] == "anger" for k in linked)  # the claim about complex trauma gets its own forms
