"""Does a response open as an answer? `curation.openings` on invented first sentences, one behaviour per test."""

from __future__ import annotations

import pytest

from pixel_pipeline.curation.openings import opening_problem, opening_problems


@pytest.mark.parametrize("sentence, names", [
    ("Controlling the story gives them a feeling of power.", "'them' with no noun before it"),
    ("You feel dependent on them, even though nothing changes.", "'them' with no noun before it"),
    ("You are never going to attain it.", "'it' with no noun before it"),
    ("At first he seemed kind and attentive.", "'he' with no noun before it"),
])
def test_a_pronoun_with_nothing_named_before_it_leans(sentence, names):
    assert opening_problem(sentence) == names


@pytest.mark.parametrize("sentence", [
    "When a person feels shame, they hide from the people who could help.",  # singular they
    "Children who grow up with chaos learn that their needs come last.",
    "Why is it that some people become abusive?",  # "it" after an inverted verb is the subject
    "When you really think about it, a home full of shouting is a sign of poor health in the adults.",
])
def test_a_pronoun_after_the_noun_it_means_stands(sentence):
    assert opening_problem(sentence) is None


@pytest.mark.parametrize("sentence, names", [
    ("Many parents fail at that test because they expect too much.", "'that' points back"),
    ("I want you to think about that for a moment before you decide.", "'that' points back"),
])
def test_a_demonstrative_pointing_at_what_came_before_leans(sentence, names):
    assert opening_problem(sentence) == names


def test_a_generic_or_timed_demonstrative_stands():
    assert opening_problem("Those who grew up with chaos often crave calm.") is None
    assert opening_problem("Shame brings negative thoughts and negative emotions, and those feed each other.") is None


@pytest.mark.parametrize("sentence, starts", [
    ("When you listen with intention.", "only a 'When ...' clause"),
    ("People that reflect back to you who you really are.", "a noun phrase"),
    ("Keeps every conversation about his own needs and wants.", "'Keeps' has no subject"),
    ("Often operates from a broken idea of what love requires.", "'Often operates' has no subject"),
    ("To get through the day without falling apart.", "an infinitive without its clause"),
    ("Not because time is cruel, but because the truth demands payment.", "opens with 'not'"),
])
def test_a_sentence_without_a_main_clause_leans(sentence, starts):
    assert opening_problem(sentence).startswith(starts)


@pytest.mark.parametrize("sentence, names", [
    ("The first one is that you cannot heal alone.", "opens a list the talk started"),
    ("Six, lots of praise makes me feel worthwhile.", "opens a list the talk started"),
    ("I'm going to show you three reasons people stay in these relationships.", "the talk's plan"),
    ("Shame also brings other feelings with it.", "'also' adds to what came before"),
    ("Some even go straight to a black rage when they are criticised.", "'Some' without the people it counts"),
    ("When you read through the , what you find is two kinds of anger.", "a word lost before a comma"),
])
def test_a_list_item_the_talks_plan_or_an_addition_leans(sentence, names):
    assert opening_problem(sentence) == names


@pytest.mark.parametrize("sentence", [
    "Shame is about who you are.",
    "Grief comes from love.",  # short, and whole: shaping's stray-sentence cut is not applied here
    "Boundaries are about what you will do, not about what the other person does.",
    "When people think about trauma, they often think of memories and painful images.",
    "I think it's important to understand that shame hides in plain sight.",
    "If you grew up with neglect, you may have learned early to override your instincts.",
    "Here's the thing about boundaries.",
    "Some people coming out of complex trauma find that anger becomes a shield.",
    "Not everyone who grew up with a critical parent becomes self-critical.",
    "Choose one relationship and practise one sentence this week.",  # an imperative has no subject and stands
    # from the sample corpus, written as answers: a reading of its openings found each of these wrongly flagged once
    "So here's a practical structure we give couples.",
    "So let me give you the simplest distinction I know.",
    "A lot of the men who come to see me start the first session by apologizing.",
    "You've probably seen it even if you didn't have a name for it: one partner who wants more closeness.",
    "So let's do a body scan for sleep, and you can do this lying in bed with the lights off.",
    "If you grew up with someone who criticized you constantly, you probably have that voice inside you now.",
])
def test_openings_that_answer_stand(sentence):
    assert opening_problem(sentence) is None


def test_short_sentences_lean_only_on_a_leaning_first_word():
    assert opening_problem("It is.") == "a short sentence that opens with 'It'"
    assert opening_problem("") == "empty"


def test_each_text_is_read_at_its_first_sentence():
    texts = ["Shame is about who you are. They hide it well.", "They hide it well. Shame is about who you are."]
    assert opening_problems(texts) == [None, "a short sentence that opens with 'They'"]


def test_answers_are_cached_by_first_sentence_and_give_the_same_decision(tmp_path, monkeypatch):
    texts = ["Shame is about who you are. It hides.", "Controlling the story gives them a feeling of power. Then more."]
    first = opening_problems(texts, tmp_path / "cache.sqlite")

    def no_parsing(_texts):
        raise AssertionError("a cached first sentence was parsed again")

    monkeypatch.setattr("pixel_pipeline.core.tagger.parse", no_parsing)
    assert opening_problems(texts, tmp_path / "cache.sqlite") == first == [None, "'them' with no noun before it"]

