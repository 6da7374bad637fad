"""Segment files: row validation, the rejects reasons, duplicates, accounting, per-file cache, style choice.

Pure functions only; a tiny deterministic bag-of-words embedder stands in for MiniLM (the real model is exercised
in test_ingest_assets.py).
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pandas as pd
import pytest

from pixel_pipeline.core.ids import content_id
from pixel_pipeline.core.records import REJECT_COLUMNS
from pixel_pipeline.ingest import segments as seg
from pixel_pipeline.ingest.cache import FileCache
from pixel_pipeline.ingest.style import StyleClassifier, choose_style, style_agreement, text_windows

WORDS = "we notice the breath and gently ground ourselves in the present moment while the body settles".split()


def text(n_words: int, salt: str = "") -> str:
    return " ".join((WORDS * (n_words // len(WORDS) + 1))[:n_words]) + (f" {salt}" if salt else "")


def good_row(salt: str, **overrides) -> dict:
    row = {"text": text(60, salt), "style": "therapeutic", "confidence": 7.5, "quality": 0.8, "source": "Chan", "file": "talk_1.txt"}
    row.update(overrides)
    return row


class HashEmbedder:
    """Deterministic bag-of-words vectors: texts sharing words get similar vectors; counts calls."""

    cache_namespace = "hash-embedder"

    def __init__(self):
        self.calls = 0

    def encode(self, texts, progress=None):
        self.calls += 1
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1.0
        if progress:
            progress(len(texts), len(texts))
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def write_segments(folder, name, rows) -> str:
    path = folder / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def reasons_of(result) -> list[str]:
    return [r for reasons in result.rejects["reasons"] for r in reasons]


# ---- the bad-input battery (issue 2, "Done when") ---------------------------------------------------------------


def test_a_truncated_list_is_one_reject_with_the_parser_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"text": "unterminated', encoding="utf-8")
    result = seg.load_segments_file(path, "training_segments/broken.json", seg.SegmentSettings())
    assert result.file_error is None and result.rows_in == 1 and result.rows.empty
    (reject,) = result.rejects.to_dict("records")
    assert reject["reasons"][0].startswith("invalid_json_item: line 1: Unterminated string")
    assert reject["segment_id"] == content_id('{"text": "unterminated')
    assert json.loads(reject["details"])["input_file"] == "training_segments/broken.json"
    assert list(result.rejects.columns) == REJECT_COLUMNS


def test_a_broken_item_costs_only_that_row(tmp_path):
    items = [good_row(name) for name in ("a", "b", "c")]
    text = json.dumps(items, indent=2)
    (tmp_path / "three.json").write_text(text.replace('"style": ', '"style" ', 1), encoding="utf-8")  # item 0 loses a colon
    result = seg.load_segments_file(tmp_path / "three.json", "training_segments/three.json", seg.SegmentSettings())
    assert result.rows_in == 3 and len(result.rows) == 2 and result.file_error is None
    assert list(result.rows["text"]) == [items[1]["text"], items[2]["text"]]
    assert reasons_of(result)[0].startswith("invalid_json_item")


def test_json_object_instead_of_list_is_an_invalid_file(tmp_path):
    path = write_segments(tmp_path, "obj.json", {"segments": [good_row("a")]})
    result = seg.load_segments_file(path, "training_segments/obj.json", seg.SegmentSettings())
    assert result.file_error == "expected a JSON list of segments, got a JSON dict"
    assert reasons_of(result) == ["invalid_file: expected a JSON list of segments, got a JSON dict"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"text": 42}, "wrong_type: text is int, expected string"),
        ({"style": ["therapeutic"]}, "wrong_type: style is list, expected string"),
        ({"confidence": "0.9"}, "wrong_type: confidence is str, expected number"),
        ({"quality": True}, "wrong_type: quality is bool, expected number"),
        ({"source": 7}, "wrong_type: source is int, expected string"),
        ({"confidence": float("nan")}, "confidence_not_finite: nan"),
        ({"confidence": float("inf")}, "confidence_not_finite: inf"),
        ({"confidence": -0.5}, "confidence_out_of_range: -0.5 not in [0, 10]"),
        ({"confidence": 1e9}, "confidence_out_of_range: 1000000000.0 not in [0, 10]"),
        ({"quality": 1.7}, "quality_out_of_range: 1.7 not in [0, 1]"),
        ({"style": "angry"}, "unknown_style: 'angry' is not one of therapeutic, educational, empathetic, practical"),
        ({"text": ""}, "empty_text"),
        ({"text": "   \n\t "}, "empty_text"),
        ({"text": "too short"}, "too_short: 2 words < min_words 5"),
        ({"text": None}, "missing_field: text is null"),
        ({"file": "../../etc/passwd"}, "unsafe_file_path: '../../etc/passwd' (path traversal ('..')); base name would be 'passwd'"),
        ({"file": "/etc/shadow"}, "unsafe_file_path: '/etc/shadow' (absolute path); base name would be 'shadow'"),
        ({"text": text(30) + " \x00\x01 binary"}, "binary_content: text holds 2 control characters (e.g. '\\x00')"),
    ],
)
def test_each_bad_row_is_rejected_with_a_reason_and_valid_rows_still_load(tmp_path, overrides, expected):
    path = write_segments(tmp_path, "therapeutic_high_quality.json", [good_row("ok1"), good_row("bad", **overrides), good_row("ok2")])
    result = seg.load_segments_file(path, "training_segments/therapeutic_high_quality.json", seg.SegmentSettings())
    assert result.rows["row_index"].tolist() == [0, 2]
    assert result.rows_in == 3 == len(result.rows) + len(result.rejects)
    (reject,) = result.rejects.to_dict("records")
    assert expected in reject["reasons"], reject["reasons"]
    details = json.loads(reject["details"])
    assert details["input_file"] == "training_segments/therapeutic_high_quality.json" and details["row_index"] == 1
    assert details["offending"], "the offending values are recorded"


def test_missing_fields_and_non_object_items(tmp_path):
    rows = [good_row("ok"), {"style": "practical"}, {"text": text(40, "nostyle")}, "just a string", None]
    result = seg.load_segments_file(write_segments(tmp_path, "x.json", rows), "training_segments/x.json", seg.SegmentSettings())
    assert len(result.rows) == 1 and result.rows_in == 5
    assert reasons_of(result) == [
        "missing_field: text",
        "missing_field: style",
        "not_an_object: expected a JSON object, got str",
        "not_an_object: expected a JSON object, got NoneType",
    ]
    relaxed = seg.load_segments_file(
        write_segments(tmp_path, "y.json", rows[:3]), "training_segments/y.json", seg.SegmentSettings(required_fields=("text",))
    )
    assert len(relaxed.rows) == 2 and relaxed.rows["style_given"].isna().sum() == 1  # style then comes from the classifier


def test_optional_fields_default_and_benign_paths_keep_their_base_name(tmp_path):
    rows = [{"text": text(40, "a"), "style": " Empathetic "}, good_row("b", file="talks/part_2.txt", source="  ")]
    result = seg.load_segments_file(write_segments(tmp_path, "empathetic_medium_quality.json", rows), "training_segments/empathetic_medium_quality.json", seg.SegmentSettings())
    first, second = result.rows.to_dict("records")
    assert first["source"] == "unknown" and first["file"] == "empathetic_medium_quality.json" and pd.isna(first["confidence_given"])
    assert first["style_given"] == "empathetic" and first["quality_band"] == "medium"
    assert second["file"] == "part_2.txt" and second["source"] == "unknown"
    assert result.notes["file_paths_sanitised"] == 1


def test_invalid_utf8_bytes_reject_only_their_row(tmp_path):
    good = json.dumps(good_row("fine")).encode()
    bad = b'{"text": "broken \xff\xfe bytes ' + text(30).encode() + b'", "style": "practical"}'
    path = tmp_path / "bin.json"
    path.write_bytes(b"[" + good + b"," + bad + b"]")
    result = seg.load_segments_file(path, "training_segments/bin.json", seg.SegmentSettings())
    assert len(result.rows) == 1
    assert reasons_of(result) == ["invalid_utf8: text holds 2 bytes that are not valid UTF-8"]
    assert "\ufffd" in json.loads(result.rejects.iloc[0]["details"])["raw"]


def test_binary_file_is_an_invalid_file(tmp_path):
    path = tmp_path / "image.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    result = seg.load_segments_file(path, "training_segments/image.json", seg.SegmentSettings())
    assert result.file_error == "expected a JSON list of segments" and result.rows_in == 1


def test_a_5_mb_segment_is_rejected_as_too_long_quickly(tmp_path):
    huge = ("word " * 1_000_000).strip()  # 5 MB, a million words
    path = write_segments(tmp_path, "huge.json", [good_row("ok"), good_row("big", text=huge)])
    start = time.perf_counter()
    result = seg.load_segments_file(path, "training_segments/huge.json", seg.SegmentSettings())
    assert time.perf_counter() - start < 5
    assert len(result.rows) == 1
    assert reasons_of(result) == ["too_long: 4,999,999 characters > max_chars 100,000"]
    assert len(result.rejects.iloc[0]["details"]) < 2_000, "the reject keeps a snippet, not the 5 MB text"
    words_cap = seg.load_segments_file(path, "training_segments/huge.json", seg.SegmentSettings(max_chars=10_000_000))
    assert reasons_of(words_cap) == ["too_long: 1000000 words > max_words 5000"]


def test_several_problems_in_one_row_are_all_reported(tmp_path):
    row = good_row("x", style="angry", confidence=-3, quality=float("nan"), file="../x.txt")
    result = seg.load_segments_file(write_segments(tmp_path, "m.json", [row]), "training_segments/m.json", seg.SegmentSettings())
    assert [r.split(":")[0] for r in reasons_of(result)] == ["unknown_style", "confidence_out_of_range", "quality_not_finite", "unsafe_file_path"]


# ---- duplicates, accounting, per-file cache ----------------------------------------------------------------------


def test_exact_repeats_are_rejected_as_duplicates_across_files_and_counts_reconcile(tmp_path):
    folder = tmp_path / "training_segments"
    folder.mkdir()
    write_segments(folder, "a_high_quality.json", [good_row("1"), good_row("2"), good_row("1")])
    write_segments(folder, "b_high_quality.json", [good_row("2", style="practical"), good_row("3")])
    (folder / "c.json").write_text("{broken", encoding="utf-8")
    files, _ = seg.list_segment_inputs(tmp_path, seg.SegmentSettings())
    results, _ = seg.ingest_segment_files(files, seg.SegmentSettings(), StyleClassifier(HashEmbedder()))
    rows, rejects = seg.combine_file_results(results)
    assert rows["segment_id"].is_unique and len(rows) == 3
    dup = [json.loads(d) for d, r in zip(rejects["details"], rejects["reasons"]) if r[0].startswith("duplicate")]
    assert [(d["input_file"], d["row_index"], d["kept_row_index"]) for d in dup] == [
        ("training_segments/a_high_quality.json", 2, 0),
        ("training_segments/b_high_quality.json", 0, 1),
    ]
    acc = seg.accounting(results, rows, rejects)
    assert acc["balanced"] and acc["rows_in"] == 6 == acc["kept"] + acc["rejected"]
    assert acc["per_file"]["training_segments/c.json"] == {"rows_in": 1, "kept": 0, "rejected": 1}


def test_accounting_detects_a_silently_dropped_row(tmp_path):
    path = write_segments(tmp_path, "a.json", [good_row("1"), good_row("2")])
    result = seg.classify_file_result(seg.load_segments_file(path, "training_segments/a.json", seg.SegmentSettings()), StyleClassifier(HashEmbedder()), seg.SegmentSettings())
    rows, rejects = seg.combine_file_results([result])
    acc = seg.accounting([result], rows.iloc[:1], rejects)
    assert not acc["balanced"] and acc["mismatched_files"] == {"training_segments/a.json": {"rows_in": 2, "kept": 1, "rejected": 0}}


def test_unchanged_files_come_from_the_cache_and_changed_files_are_reprocessed(tmp_path):
    folder = tmp_path / "training_segments"
    folder.mkdir()
    write_segments(folder, "a.json", [good_row("1"), good_row("2", text=42)])
    write_segments(folder, "b.json", [good_row("3")])
    settings = seg.SegmentSettings()
    embedder = HashEmbedder()
    classifier = StyleClassifier(embedder)
    cache = FileCache(tmp_path / "cache" / "ingest", "segments")
    files, _ = seg.list_segment_inputs(tmp_path, settings)
    first, stats = seg.ingest_segment_files(files, settings, classifier, cache)
    assert stats == {"files": 2, "cache_hits": 0, "processed": 2}
    calls = embedder.calls
    again, stats = seg.ingest_segment_files(files, settings, classifier, cache)
    assert stats["cache_hits"] == 2 and embedder.calls == calls, "nothing is re-read or re-embedded"
    for a, b in zip(first, again):
        pd.testing.assert_frame_equal(a.rows, b.rows)
        pd.testing.assert_frame_equal(a.rejects, b.rejects)
        assert a.rows_in == b.rows_in
    write_segments(folder, "b.json", [good_row("3"), good_row("4")])
    _, stats = seg.ingest_segment_files(files, settings, classifier, cache)
    assert stats == {"files": 2, "cache_hits": 1, "processed": 1}
    _, stats = seg.ingest_segment_files(files, seg.SegmentSettings(min_words=10), classifier, cache)
    assert stats["cache_hits"] == 0, "other settings -> other cache keys"


def test_five_thousand_segments_load_fast(tmp_path):
    folder = tmp_path / "training_segments"
    folder.mkdir()
    for f in range(10):
        write_segments(folder, f"s{f}_high_quality.json", [good_row(f"{f}-{i}", text=text(390, f"{f}-{i}")) for i in range(500)])
    files, _ = seg.list_segment_inputs(tmp_path, seg.SegmentSettings())
    start = time.perf_counter()
    results = [seg.load_input_file(item, seg.SegmentSettings()) for item in files]
    rows, rejects = seg.combine_file_results([r.with_rows(r.rows.assign(style_predicted="therapeutic", style_confidence=0.9, style="therapeutic", expert=0)) for r in results])
    elapsed = time.perf_counter() - start
    assert len(rows) == 5000 and rejects.empty
    assert elapsed < 10, f"loading 5,000 segments took {elapsed:.1f}s"


# ---- style choice and agreement -----------------------------------------------------------------------------------


def test_choose_style_settings():
    given = pd.Series(["therapeutic", "practical", None, "empathetic"], dtype="object")
    predicted = pd.Series(["educational", "practical", "empathetic", "therapeutic"])
    confidence = pd.Series([0.9, 0.4, 0.2, 0.3])
    assert choose_style(given, predicted, confidence, "auto", 0.5).tolist() == ["educational", "practical", "empathetic", "empathetic"]
    assert choose_style(given, predicted, confidence, "predicted", 0.5).tolist() == predicted.tolist()
    assert choose_style(given, predicted, confidence, "given", 0.5).tolist() == ["therapeutic", "practical", "empathetic", "empathetic"]
    with pytest.raises(ValueError, match="expert_style_from"):
        choose_style(given, predicted, confidence, "labels", 0.5)


def test_style_agreement_reports_kappa_per_style_and_confusion():
    given = pd.Series(["therapeutic"] * 4 + ["empathetic"] * 4 + [None])
    predicted = pd.Series(["therapeutic"] * 3 + ["practical"] + ["empathetic", "therapeutic", "therapeutic", "therapeutic", "practical"])
    result = style_agreement(given, predicted)
    assert result["n_labelled"] == 8 and result["agreement"] == 0.5
    assert result["per_style"]["therapeutic"]["agreement"] == 0.75 and result["per_style"]["empathetic"]["agreement"] == 0.25
    assert result["confusion"]["empathetic"]["therapeutic"] == 3
    assert result["kappa"] < 0.2, "half agreement on a 2-label set with a skewed predictor is near chance"


def test_classifier_confidence_is_a_probability_and_long_texts_are_windowed():
    classifier = StyleClassifier(HashEmbedder())
    styles, confidence = classifier.predict([text(60), "here are three steps you can do today to set a boundary", text(3700)])
    assert len(styles) == 3 and ((confidence >= 0) & (confidence <= 1)).all()
    assert np.allclose(classifier.probabilities(["a b c"]).sum(axis=1), 1.0)
    windows = text_windows(text(3700), 180, 4)
    assert len(windows) == 4 and all(len(w.split()) == 180 for w in windows)


def test_inputs_skip_half_written_names_and_read_transcript_sources(tmp_path):
    (tmp_path / "training_segments").mkdir()
    (tmp_path / "transcripts").mkdir()
    for name in ("a.json", ".a.json.tmp", "b.json.part", "~c.json"):
        (tmp_path / "training_segments" / name).write_text("[]", encoding="utf-8")
    for name in ("t1.txt", "t2.txt", "t3.txt.part"):
        (tmp_path / "transcripts" / name).write_text("text", encoding="utf-8")
    (tmp_path / "transcripts" / "sources.json").write_text(json.dumps({"t1.txt": "Other Channel"}), encoding="utf-8")
    files, notes = seg.list_segment_inputs(tmp_path, seg.SegmentSettings(transcript_source="Default Channel"))
    assert [(f.relative_name, f.source) for f in files] == [
        ("training_segments/a.json", None),
        ("transcripts/t1.txt", "Other Channel"),
        ("transcripts/t2.txt", "Default Channel"),
    ]
    assert notes == []
    (tmp_path / "transcripts" / "sources.json").write_text("{oops", encoding="utf-8")
    files, notes = seg.list_segment_inputs(tmp_path, seg.SegmentSettings())
    assert "sources.json unreadable" in notes[0] and {f.source for f in files if f.kind == "transcript"} == {seg.UNKNOWN_SOURCE}


def test_a_corrupt_cache_entry_is_recomputed_not_trusted(tmp_path):
    folder = tmp_path / "training_segments"
    folder.mkdir()
    write_segments(folder, "a.json", [good_row("1")])
    settings, classifier = seg.SegmentSettings(), StyleClassifier(HashEmbedder())
    cache = FileCache(tmp_path / "cache", "segments")
    files, _ = seg.list_segment_inputs(tmp_path, settings)
    seg.ingest_segment_files(files, settings, classifier, cache)
    (rows_file,) = (tmp_path / "cache" / "segments").glob("*/rows.parquet")
    rows_file.write_bytes(b"not parquet")
    results, stats = seg.ingest_segment_files(files, settings, classifier, cache)
    assert stats["cache_hits"] == 0 and len(results[0].rows) == 1
