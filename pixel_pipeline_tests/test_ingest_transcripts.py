"""Transcript cleaning and sentence-boundary segmentation (pure functions, no model)."""

from __future__ import annotations

from pixel_pipeline.ingest.segments import SegmentSettings, segment_transcript_file
from pixel_pipeline.ingest.transcripts import clean_transcript, cut_segments, split_long_sentence, split_sentences


def test_timestamps_cues_and_vtt_headers_are_removed():
    raw = (
        "WEBVTT\nKind: captions\n\n1\n00:00:01.000 --> 00:00:04.000\nHello there.\n\n2\n00:00:04,500 --> 00:00:06,000\n"
        "(00:12) We begin [01:02:03] now.\n00:15 Next line <00:00:16.000> here."
    )
    assert clean_transcript(raw) == "Hello there. We begin now. Next line here."


def test_sound_tags_music_notes_and_html_are_removed():
    raw = "[Music] ♪ la la ♪\nI feel &amp; think &#39;a lot&#39;&nbsp;today. [Applause] (laughter)\n<i>Really</i> &amp;amp; done."
    assert clean_transcript(raw) == "la la I feel & think 'a lot' today. Really & done."


def test_speaker_labels_are_removed_but_ordinary_colons_kept():
    raw = "(00:15) CARLA: And I'm Carla.\nDEV: Hi.\n>> DR. HART: Welcome.\n>> so anyway\nThe rule: breathe. Dev said: ok"
    assert clean_transcript(raw) == "And I'm Carla. Hi. Welcome. so anyway The rule: breathe. Dev said: ok"


def test_caption_lines_are_joined_rolling_repeats_dropped_and_stray_punctuation_fixed():
    raw = "so what I mean\nso what I mean\nis that , it's fine .\n, and then\nwe go on ;; again"
    assert clean_transcript(raw) == "so what I mean is that, it's fine., and then we go on; again"


def test_sentence_boundaries_respect_abbreviations_initials_and_decimals():
    text = 'Dr. Hart met J. Smith at 3.5 p.m. today. "Is that right?" she asked. Yes! It was e.g. fine.'
    assert split_sentences(text) == ['Dr. Hart met J. Smith at 3.5 p.m. today.', '"Is that right?" she asked.', "Yes!", "It was e.g. fine."]


def test_unpunctuated_captions_are_cut_into_bounded_runs():
    sentence = " ".join(f"w{i}" for i in range(200))
    parts = split_long_sentence(sentence, 80)
    assert [len(p.split()) for p in parts] == [67, 67, 66]
    assert " ".join(parts) == sentence


def test_segments_follow_the_target_length_and_end_at_sentence_boundaries():
    sentences = [f"This is sentence number {i} about healing and feeling safe again." for i in range(120)]
    text = " ".join(sentences)  # 11 words per sentence, 1,320 words
    segments = cut_segments(text, target_words=350, min_tail_words=20, max_words=5000)
    counts = [len(s.split()) for s in segments]
    assert all(s.endswith(".") for s in segments)
    assert all(abs(c - 350) <= 11 for c in counts[:-1]), counts
    assert sum(counts) == 1320 and " ".join(segments) == text
    assert [len(s.split()) for s in cut_segments(text, target_words=100)][:3] == [99, 99, 99]


def test_a_short_tail_joins_the_previous_segment():
    text = " ".join(["One two three four five six seven eight nine ten."] * 35 + ["Bye now."])
    counts = [len(s.split()) for s in cut_segments(text, target_words=350, min_tail_words=20)]
    assert counts == [352]  # the 2-word tail is not a segment of its own


def test_segment_transcript_file_fills_source_file_and_rejects_broken_files(tmp_path):
    good = tmp_path / "talk.txt"
    good.write_text("[Music]\n" + " ".join(f"Grief moves through the body in wave {i}." for i in range(100)), encoding="utf-8")
    result = segment_transcript_file(good, "transcripts/talk.txt", SegmentSettings(), "Some Channel")
    assert result.rows_in == len(result.rows) == 2 and result.rejects.empty
    # 800 words of 8-word sentences, target 350: the 96-word tail (< min_tail_words 100) joins the second segment
    assert result.rows["word_count"].tolist() == [352, 448]
    assert set(result.rows["source"]) == {"Some Channel"} and set(result.rows["file"]) == {"talk.txt"}
    assert result.rows["style_given"].isna().all() and result.rows["origin"].eq("transcript").all()

    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 au lait".encode("latin-1"))
    bad = segment_transcript_file(latin1, "transcripts/latin1.txt", SegmentSettings(), "x")
    assert bad.rows is None and bad.rows_in == 1 and len(bad.rejects) == 1
    assert bad.rejects.iloc[0]["reasons"][0].startswith("invalid_file: not valid UTF-8 (byte 0xe9 at offset 3)")

    empty = tmp_path / "empty.txt"
    empty.write_text("[Music]\n\n(00:01)\n", encoding="utf-8")
    assert "empty transcript" in segment_transcript_file(empty, "transcripts/empty.txt", SegmentSettings(), "x").file_error

    short = tmp_path / "short.txt"
    short.write_text("Too short.", encoding="utf-8")
    result = segment_transcript_file(short, "transcripts/short.txt", SegmentSettings(), "x")
    assert result.rows_in == 1 and result.rows.empty and result.rejects.iloc[0]["reasons"][0].startswith("too_short")
