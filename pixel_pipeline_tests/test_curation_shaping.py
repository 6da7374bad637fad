"""Response shaping (curation.shaping): what a segment response must look like before a model learns to say it."""

from pixel_pipeline.curation.shaping import (
    ShapingSettings, collapse_loops, leans_on_before, reword_continuation, shape, stands_alone,
)

GOOD = ("Shame tells you that you are the problem. Guilt tells you that you did something wrong. "
        "When we grow up in a home where our needs were ignored, we learn to hide. "
        "Healing starts when you notice the voice of shame and name it for what it is. "
        "You can then practise treating yourself with the same care you would offer a friend. ")


def test_a_clean_response_is_returned_exactly_as_read():
    result = shape(GOOD.strip())
    assert result.text == GOOD.strip()
    assert not result.changed


def test_a_first_sentence_that_starts_mid_thought_is_dropped_and_the_answer_starts_with_a_capital():
    result = shape("blamed for each thing that broke at home. " + GOOD)
    assert result.text.startswith("Shame tells you")
    assert result.dropped_head_words == 8
    assert "mid-thought" in result.actions[0]


def test_a_last_sentence_with_no_sentence_end_is_dropped():
    result = shape(GOOD + "And the next thing I want to talk about is")
    assert result.text.endswith("offer a friend.")
    assert result.dropped_tail_words == 10


def test_channel_talk_is_removed_wherever_it_sits():
    text = ("Welcome back to the channel. " + GOOD + "The worksheet for this video sits in the description. "
            "Tap the link below to get it. Thanks for watching.")
    result = shape(text)
    assert result.text == GOOD.strip()
    assert result.channel_talk_sentences == 4


def test_a_phrase_loop_is_kept_once():
    text, loops = collapse_loops("Lonely teenagers are more likely to skip school, and are more likely to skip "
                                 "school, and are more likely to skip school, and are more likely to skip school.")
    assert loops == 1
    assert text == "Lonely teenagers are more likely to skip school."


def test_ordinary_emphasis_is_not_a_loop():
    sentence = "It is very, very hard, and I know that it is hard for you."
    assert collapse_loops(sentence) == (sentence, 0)


def test_a_repeated_sentence_is_removed():
    result = shape(GOOD + "You can then practise treating yourself with the same care you would offer a friend.")
    assert result.text == GOOD.strip()
    assert result.repeated_sentences == 1


def test_a_garbled_tail_is_cut_and_the_good_passage_kept():
    tail = " Привет как дела это было очень хорошо. Zorbly fnax quorp blen sprock tavish mirn droop flerb."
    result = shape(GOOD + tail)
    assert result.text == GOOD.strip()
    assert result.garbled_sentences == 2
    assert result.dropped_tail_words > 0
    assert stands_alone(result) is None


def test_caption_text_without_punctuation_does_not_stand_as_an_answer():
    caption = ("So when you grow up with a parent who yells you learn to watch every face in the room and you "
               "become the one who keeps the peace and later in your marriage you notice that you still scan your "
               "partner for signs of anger and you apologise before anything has happened because your body "
               "remembers what it was like to be small and frightened and nobody came to help you then.")
    result = shape(caption)
    assert result.unpunctuated_sentences == 1
    reason = stands_alone(result)
    assert reason.startswith("shaping:") and "caption text" in reason


def test_the_minimum_passage_length_is_curations_min_words_and_a_short_segment_is_left_to_the_length_rule():
    cut = shape("blamed for each thing that broke at home. " + GOOD)  # 8 words cut, 63 left
    assert stands_alone(cut, ShapingSettings(min_words=60)) is None
    assert stands_alone(cut, ShapingSettings(min_words=65)).startswith("shaping: 63 of 71 words left")
    assert stands_alone(shape(GOOD), ShapingSettings(min_words=500)) is None  # too short as read: length's call


def test_a_lower_case_sentence_opener_is_caption_style_not_a_cut():
    result = shape("the most common myth I hear about anxiety is that it means you are weak. " + GOOD)
    assert result.text.startswith("The most common myth")
    assert result.dropped_head_words == 0
    assert shape("of the people who were there, nobody said a word about it. " + GOOD).text.startswith("Shame")


def test_opening_sentences_that_lean_on_what_came_before_the_cut_are_dropped():
    result = shape("And after that the week gets busier. That is when the old habits come back. " + GOOD)
    assert result.text.startswith("Shame tells you")
    assert any("lean on what came before" in a for a in result.actions)


def test_a_list_item_or_example_cut_from_its_list_is_dropped_at_the_start():
    for opener in ("Another one is the quiet withdrawal after every argument.",
                   "For example, the way she went silent at dinner.",
                   "All of those are ways to stay small.",
                   "The second thing is that it gets worse at night."):
        result = shape(opener + " " + GOOD)
        assert result.text.startswith("Shame tells you"), opener
    assert not leans_on_before("So why do we keep going back to the same people?")  # a talk's own question stays


def test_a_first_sentence_pointing_back_with_a_demonstrative_is_dropped_but_not_a_question_or_a_generic_those():
    for opener in ("If you relate to that, you will know the feeling.", "Over time, this creates a quiet shift.",
                   "If a lot of this sounds familiar, there is a reason."):
        assert shape(opener + " " + GOOD).text.startswith("Shame tells you"), opener
    assert not leans_on_before("So why do we keep doing this?")
    assert not leans_on_before("Those who grew up in chaos learn to scan every room.")
    assert not leans_on_before("Shame is a feeling that tells you that you are bad.")  # relative and complement "that"


def test_a_first_sentence_without_a_verb_is_a_title_or_a_fragment_and_is_dropped():
    for opener in ("The different kinds of limits at work.", "By over helping the neighbour, in essence, enabling the habit."):
        assert shape(opener + " " + GOOD).text.startswith("Shame tells you"), opener
    assert shape("Start small and pick one habit for the week. " + GOOD).text.startswith("Start small")  # imperative


def test_a_talks_schedule_and_sign_off_are_channel_talk():
    result = shape(GOOD + "Next week we will finish the series on shame. Thanks to everybody who came tonight.")
    assert result.text == GOOD.strip() and result.channel_talk_sentences == 2


def test_a_sentence_that_points_at_a_picture_is_channel_talk():
    result = shape(GOOD + " If you look at the diagram, the arrows go both ways.")
    assert result.text == GOOD.strip() and result.channel_talk_sentences == 1


def test_a_long_opener_that_goes_on_with_a_list_keeps_its_topic_without_the_list_reference():
    cases = {
        "Another common thing that happens in a chaotic home is that children learn to hide every feeling.":
            "A common thing that happens in a chaotic home is that children learn to hide every feeling.",
        "Next thing I think is important to understand is that putting things off can be a way to stay safe.":
            "One thing I think is important to understand is that putting things off can be a way to stay safe.",
        "Now, a couple other things are happening with the child who carries the blame in the family.":
            "A couple of things are happening with the child who carries the blame in the family.",
        "Number four, if what set you off was an argument, you can step back and use gentle words instead.":
            "If what set you off was an argument, you can step back and use gentle words instead.",
        "Next, some people who grew up walking on eggshells find that they cannot rest even on a quiet day.":
            "Some people who grew up walking on eggshells find that they cannot rest even on a quiet day.",
    }
    for opener, reworded in cases.items():
        result = shape(opener + " " + GOOD)
        assert result.text.startswith(reworded), opener
        assert "reworded an opening that goes on with a list before the cut" in result.actions


def test_a_list_opener_that_says_nothing_without_its_list_is_dropped_not_reworded():
    assert reword_continuation("Another one is the quiet withdrawal that follows every single argument at home.") is None
    assert reword_continuation("The list goes on and on of things that can go wrong in a family like that.") is None
    assert reword_continuation("The other ways it shows up at work are many and most of them are quiet.") is None
    assert shape("The list goes on and on of things that can go wrong in a family like that. " + GOOD
                 ).text.startswith("Shame tells you")
    assert reword_continuation("The last thing you want to do is argue with them.") is None  # not a list: not touched


def test_the_talks_plan_a_stranded_relative_clause_and_a_pointing_back_ending_are_dropped_at_the_start():
    for opener in ("Let me start by just helping you get an intro into what this whole evening is about.",
                   "I want to talk tonight about a part of healing that a lot of people never hear about.",
                   "We're going to start on the outside today and then work inward, step by step.",
                   "Where they don't even realize what they're doing to the people around them.",
                   "My whole life I was a nervous kid who worried about everything, because of that."):
        assert shape(opener + " " + GOOD).text.startswith("Shame tells you"), opener
    assert not leans_on_before("Where do we even start when the whole family is in crisis?")
    assert not leans_on_before("Where does your mind go when someone raises their voice.")  # a question without its mark


def test_a_closing_sentence_that_only_announces_the_talks_next_item_is_dropped():
    for closer in ("Next one.", "The next one.", "I'll just give you one last one.", "Let's look at the next one.",
                   "Okay, one more thing.", "The next one we get into are new habits.", "Let's begin with the basics."):
        result = shape(GOOD + closer)
        assert result.text == GOOD.strip(), closer
        assert "dropped 1 closing sentence(s) that announce the talk's next part" in result.actions
    kept = GOOD + "The next one we get into is what happens when the old habits come back at night."
    assert shape(kept).text == kept.strip()  # it says what the next item is: a sentence of the answer
    quoted = GOOD + "I want to go back to what soothes me."  # the client's inner voice, not the talk's plan
    assert shape(quoted).text == quoted.strip()


def test_a_closing_plan_list_marker_sign_off_or_verbless_caption_scrap_is_dropped():
    for closer in ("Let's talk about what becomes of the quiet child once the house goes silent, and why it varies.",
                   "Now let's get the hard part of this out of the way first.",
                   ", , let's look at what the quiet child learns, and why it lasts.",
                   "One other perspective.", "That was one other example.",
                   "That's the end of our time.", "severe."):
        assert shape(GOOD + closer).text == GOOD.strip(), closer
    for kept in ("they fragment.",  # a whole sentence the caption left in lower case
                 "I want to talk more with my sister about it."):  # a plan of the client's, not of the talk
        assert shape(GOOD + kept).text.endswith(kept[1:]), kept


def test_at_most_five_leaning_sentences_are_dropped():
    leaning = ("And it goes on. And it goes further. And it goes deeper. And it goes on and on. "
               "And it goes round again. And it keeps going for years. ")
    assert shape(leaning + GOOD).text.startswith("And it keeps going for years.")


def test_a_mention_of_the_speakers_other_videos_is_channel_talk():
    result = shape(GOOD + "Last month I made a whole video on the calm-parent routine.")
    assert result.text == GOOD.strip() and result.channel_talk_sentences == 1


def test_a_sentence_the_caption_cut_mid_phrase_is_dropped():
    result = shape(GOOD + "That is very common in families as. People who grow up this way learn to hide it well.")
    assert "families as." not in result.text and result.text.endswith("hide it well.")
    assert result.cut_sentences == 1


def test_a_sentence_ending_on_a_stranded_preposition_stays():
    text = GOOD + "Find someone safe you can really talk to."
    assert shape(text).text == text.strip()


def test_a_first_sentence_cut_mid_phrase_is_dropped_as_an_opener():
    result = shape("There is a shame that comes from betrayal as. " + GOOD)
    assert result.text.startswith("Shame tells you")


def test_a_caption_question_gets_its_question_mark_back():
    result = shape(GOOD + "So how do you protect yourself. You start by naming what happened to you, out loud.")
    assert "So how do you protect yourself?" in result.text
    assert result.questions_marked == 1


def test_a_statement_keeps_its_full_stop():
    text = GOOD + "What I want you to know is that you are not alone in this."
    assert shape(text).text == text.strip()


def test_a_caption_stutter_is_said_once():
    result = shape("There's, there's a kind of shame that grows in silence. " + GOOD)
    assert result.text.startswith("There's a kind of shame that grows in silence.")


def test_a_caption_question_at_the_opening_stays_as_the_talk_s_own_question():
    result = shape("So why do we keep going back to this. " + GOOD)
    assert result.text.startswith("So why do we keep going back to this? Shame tells you")


def test_a_sentence_with_a_finite_verb_is_a_clause_without_tagging_and_a_fragment_still_goes_to_the_tagger(monkeypatch):
    from pixel_pipeline.core import tagger

    sentences = ["The different kinds of limits at work.", "By over helping the neighbour, enabling the habit.",
                 "Shame is a feeling that tells you that you are bad.", "They'll come back when it's quiet.",
                 "Start small and pick one habit for the week."]
    by_tagger = [any(tg in tagger.CLAUSE_VERB_TAGS for _, tg, _ in tokens) for tokens in tagger.tag(sentences)]
    assert [tagger.has_clause_verb(s) for s in sentences] == by_tagger == [False, False, True, True, True]
    asked: list[str] = []
    real_tag = tagger.tag
    monkeypatch.setattr(tagger, "tag", lambda texts: asked.extend(texts) or real_tag(texts))
    assert tagger.has_clause_verb(sentences[2]) and tagger.has_clause_verb(sentences[3]) and not asked
    assert not tagger.has_clause_verb(sentences[0]) and asked == [sentences[0]]
