"""The schema audit's anomaly scan, raw field survey and self-contained HTML (pure functions)."""

from __future__ import annotations

import json

import pandas as pd

from pixel_pipeline.core.records import rejects_frame, reject_row
from pixel_pipeline.ingest.audit import AuditSettings, audit_plots, build_audit, render_html, survey_segment_fields
from pixel_pipeline.ingest.conversations import conversation_frame
from pixel_pipeline.ingest.segments import RAW_SEGMENT_COLUMNS
from pixel_pipeline.ingest.text import max_repeat_run, non_latin_runs, sanitise_file_name


def segment_rows(texts, confidence=None):
    n = len(texts)
    return pd.DataFrame(
        {
            "segment_id": [f"id{i}" for i in range(n)],
            "text": texts,
            "origin": ["segments_file"] * n,
            "input_file": ["training_segments/a.json"] * n,
            "row_index": list(range(n)),
            "file": ["t.txt"] * n,
            "source": ["Healing Minds with Dr. Lena Hart"] + ["Other"] * (n - 1),
            "style_given": ["therapeutic"] * n,
            "confidence_given": confidence or [0.5] * n,
            "quality": [0.8] * n,
            "quality_band": ["high"] * n,
            "style_predicted": ["therapeutic"] * n,
            "style_confidence": [0.9] * n,
            "style": ["therapeutic"] * n,
            "expert": [0] * n,
            "word_count": [len(t.split()) for t in texts],
        }
    )[list(RAW_SEGMENT_COLUMNS)]


def test_text_anomaly_detectors():
    assert non_latin_runs("we talk about когда мы говорим and 在 保护 你 then α.") == ["когда мы говорим", "在 保护 你"]
    assert max_repeat_run("and so we pray. " + "Amen. " * 20 + "Thank you.") == (20, "amen")
    stuck = "so what we're going to do now is " * 12 + "write it down"
    assert max_repeat_run(stuck) == (12, "so what we're going to do now is")
    assert max_repeat_run("an ordinary sentence with no repeats at all") == (1, "")
    assert sanitise_file_name("..\\..\\windows\\win.ini") == ("win.ini", "path traversal ('..')")


def test_audit_reports_every_anomaly_kind(tmp_path):
    base = " ".join(f"We notice breath number {i} and let the body settle." for i in range(8)) + " "
    texts = [
        base + "one",
        base + "One!",  # a near duplicate of the first (case and punctuation only)
        base + "когда мы говорим о травме",
        base + "Amen. " * 10,
        "short text here",
        ("long " * 2500).strip(),
    ]
    rows = segment_rows(texts, confidence=[0.2, 3.5, 9.9, 0.7, 0.1, 0.4])
    rejects = rejects_frame([reject_row("segments", "x", "raw_segments", ["duplicate: same text as a.json row 0"]), reject_row("segments", "y", "raw_segments", ["empty_text"])])
    seg_file = tmp_path / "a.json"
    seg_file.write_text(json.dumps([{"text": "a", "style": "practical", "confidence": "high"}, {"text": None, "quality": 0.5}, 3]), encoding="utf-8")
    empty_conv = conversation_frame([])
    audit = build_audit(rows, rejects, empty_conv, rejects_frame([]), empty_conv, rejects_frame([]), [seg_file], AuditSettings(),
                        voice_sources=("Healing Minds with Dr. Lena Hart",))
    anomalies = audit["segments"]["anomalies"]
    assert anomalies["confidence_outside_unit_interval"]["count"] == 2
    assert anomalies["rejected_empty_text"] == 1 and anomalies["duplicate_texts"]["exact_rejected"] == 1
    assert anomalies["duplicate_texts"]["near_duplicates_kept"] == 1
    assert anomalies["extreme_lengths"]["short"] == 1 and anomalies["extreme_lengths"]["long"] == 1
    assert [e["segment_id"] for e in anomalies["non_latin_script_runs"]["examples"]] == ["id2"]
    assert anomalies["repeated_phrases"]["examples"][0]["segment_id"] == "id3"
    assert audit["segments"]["voice_share"] == round(1 / 6, 4) and audit["segments"]["voice_sources"] == ["Healing Minds with Dr. Lena Hart"]
    fields = audit["segments"]["raw_fields"]
    assert fields["items"] == 3 and fields["other_fields"] == {"<number item>": 1}
    assert fields["fields"]["confidence"]["types"] == {"string": 1, "missing": 1}
    assert fields["fields"]["text"]["null_rate"] == 0.3333

    images = audit_plots(rows)
    html = render_html(audit, images)
    assert html.count("<img") == len(images) >= 4
    assert "src=\"data:image/png;base64," in html and "<script" not in html and "http://" not in html and "https://" not in html


def test_survey_reports_unreadable_files(tmp_path):
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    assert survey_segment_fields([tmp_path / "bad.json"])["unreadable_files"][0]["file"] == "bad.json"
