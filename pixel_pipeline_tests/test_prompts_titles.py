"""The talk's title as the client's question (prompts.titles, generator `title`)."""

from pixel_pipeline.prompts.generators import TITLE, SegmentInput, TitleQuestionGenerator
from pixel_pipeline.prompts.titles import channel_tails, title_proper, title_questions, title_words


def _ask(source_files: dict[str, list[str]]) -> dict[str, str | None]:
    return {f: q for f, (q, _) in title_questions(source_files).items()}


def test_a_file_name_gives_back_the_title_words_and_contractions():
    assert title_words("why_you_can_t_let_go_of_the_past.txt") == "why you can't let go of the past"
    assert title_words("here_s_why_you_re_tired.txt") == "here's why you're tired"
    assert title_words("big_t_vs_little_t_trauma_re_parenting.txt") == "big t vs little t trauma re parenting"
    assert title_words("why_narcissists_dont_change.txt") == "why narcissists don't change"


def test_a_title_that_is_a_question_becomes_the_clients_question():
    asked = _ask({"educator": ["why_do_people_become_abusive.txt", "am_i_ever_going_to_heal_from_my_shame.txt",
                               "can_the_golden_child_turn_into_the_scapegoat.txt"]})
    assert asked == {"why_do_people_become_abusive.txt": "Why do people become abusive?",
                     "am_i_ever_going_to_heal_from_my_shame.txt": "Am I ever going to heal from my shame?",
                     "can_the_golden_child_turn_into_the_scapegoat.txt":
                         "Can the golden child turn into the scapegoat?"}


def test_how_to_asks_how_do_i_and_a_statement_after_a_question_word_is_inverted_in_the_clients_voice():
    asked = _ask({"educator": ["how_to_stop_procrastinating_and_heal_feelings_of_paralysis.txt",
                               "why_you_can_t_let_go_of_the_past.txt", "why_you_are_afraid_to_be_a_burden.txt",
                               "why_procrastination_is_tied_to_complex_trauma_and_how_to_heal_it.txt",
                               "what_complex_trauma_does_to_love_attachment_and_loyalty.txt",
                               "when_the_golden_child_grows_up.txt"]})
    assert asked["how_to_stop_procrastinating_and_heal_feelings_of_paralysis.txt"] == \
        "How do I stop procrastinating and heal feelings of paralysis?"
    assert asked["why_you_can_t_let_go_of_the_past.txt"] == "Why can't I let go of the past?"
    assert asked["why_you_are_afraid_to_be_a_burden.txt"] == "Why am I afraid to be a burden?"
    assert asked["why_procrastination_is_tied_to_complex_trauma_and_how_to_heal_it.txt"] == \
        "Why is procrastination tied to complex trauma and how do I heal it?"
    assert asked["what_complex_trauma_does_to_love_attachment_and_loyalty.txt"] == \
        "What does complex trauma do to love attachment and loyalty?"
    assert asked["when_the_golden_child_grows_up.txt"] == "What happens when the golden child grows up?"


def test_a_series_tag_a_guest_a_numbered_subtitle_and_the_channels_tail_are_cut_off():
    assert title_proper("how to spot a narcissist 18 characteristics of narcissism") == "how to spot a narcissist"
    assert title_proper("how to handle a narcissist qanda with tim part 8") == "how to handle a narcissist"
    assert title_proper("what is betrayal blindness with dr jennifer freyd") == "what is betrayal blindness"
    assert title_proper("am I ever going to heal from my shame healing shame as part of recovery") == \
        "am I ever going to heal from my shame"
    titles = ["why do people seek approval complex trauma prisons", "drawn to crime complex trauma prisons",
              "sexuality as love complex trauma prisons", "why boundaries matter"]
    tails = channel_tails(titles)
    assert "complex trauma prisons" in tails and "matter" not in tails
    assert title_proper(titles[0], tails) == "why do people seek approval"


def test_a_title_that_is_no_clients_question_is_refused_with_the_reason():
    out = title_questions({"eckhart_tolle": ["how_to_calm_the_voice_inside_eckhart_tolle_teachings.txt"],
                           "teacher": ["is_this_your_real_personality.txt", "healing_grief_is_not_linear.txt",
                                       "why_shame_affects_100_of_people.txt",
                                       "when_a_narcissist_is_triggered_others_pay_the_price.txt"]})
    assert out["how_to_calm_the_voice_inside_eckhart_tolle_teachings.txt"] == (None, "name_left")
    assert out["is_this_your_real_personality.txt"] == (None, "points_at_nothing")
    assert out["healing_grief_is_not_linear.txt"] == (None, "not_a_question")
    assert out["why_shame_affects_100_of_people.txt"] == (None, "cut_mid_phrase")
    assert out["when_a_narcissist_is_triggered_others_pay_the_price.txt"] == (None, "two_clauses")


def test_the_title_generator_proposes_the_question_to_every_segment_of_its_talk_only():
    gen = TitleQuestionGenerator({"educator": ["why_do_people_become_abusive.txt", "healing_grief_is_not_linear.txt"]})
    segments = [SegmentInput("a", "text a", None, "why_do_people_become_abusive.txt"),
                SegmentInput("b", "text b", None, "why_do_people_become_abusive.txt"),
                SegmentInput("c", "text c", None, "healing_grief_is_not_linear.txt"),
                SegmentInput("d", "text d", None, None)]
    out = gen.generate(segments)
    assert [[c.prompt for c in cands] for cands in out] == [["Why do people become abusive?"]] * 2 + [[], []]
    assert out[0][0].generator == TITLE and out[0][0].note == "title: why_do_people_become_abusive.txt"
    assert gen.stats == {"ok": 1, "not_a_question": 1}
    # the questions are part of the fingerprint: a new title of the channel re-proposes
    assert gen.fingerprint() != TitleQuestionGenerator({"educator": ["why_do_people_stay.txt"]}).fingerprint()
