"""The voice stage finds its educator: set, or detected in the corpus when it clearly leads; otherwise a stop that
lists the corpus's sources. No channel name lives in the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixel_pipeline.core import records
from pixel_pipeline.core.records import VoiceChoice, VoiceRule, VoiceSourceError, choose_voice_sources
from pixel_pipeline.ingest import segments as seg
from pixel_pipeline_tests.conftest import REPO_ROOT, SAMPLE_DATA_DIR


@pytest.fixture(autouse=True)
def no_env_setting(monkeypatch):
    monkeypatch.delenv("PIXEL_VOICE_SOURCES", raising=False)


def test_the_dominant_source_is_detected_when_it_clearly_leads():
    choice = choose_voice_sources({"tim_fletcher": 1076, "other": 195, "third": 12})
    assert choice.sources == ("tim_fletcher",) and choice.segments == {"tim_fletcher": 1076}
    assert choice.origin.startswith("detected: the dominant source, 5.5x the next source")
    assert choice.total_segments == 1283 and choice.candidates[0] == {"source": "tim_fletcher", "segments": 1076}
    assert choose_voice_sources({"only": 3}).sources == ("only",)  # one source is unambiguous, however small


def test_no_clear_leader_stops_with_the_candidates_and_their_counts():
    with pytest.raises(VoiceSourceError) as err:
        choose_voice_sources({"a": 100, "b": 80, "c": 3})
    message = str(err.value)
    assert "no source clearly leads" in message and "1.5x the next source and at least 20 segments" in message
    assert "'a': 100, 'b': 80, 'c': 3" in message and "PIXEL_VOICE_SOURCES" in message
    with pytest.raises(VoiceSourceError, match="'a': 12, 'b': 2"):
        choose_voice_sources({"a": 12, "b": 2})  # leads 6x, but under min_segments
    assert choose_voice_sources({"a": 100, "b": 80}, rule=VoiceRule(min_lead_ratio=1.2)).sources == ("a",)


def test_a_configured_source_absent_from_the_corpus_stops_with_the_corpus_sources(monkeypatch):
    with pytest.raises(VoiceSourceError) as err:
        choose_voice_sources({"tim_fletcher": 10, "other": 5}, ["nobody"])
    assert "['nobody'] (from asset setting) are not in the corpus" in str(err.value)
    assert "'tim_fletcher': 10, 'other': 5" in str(err.value)
    monkeypatch.setenv("PIXEL_VOICE_SOURCES", '["nobody"]')
    with pytest.raises(VoiceSourceError, match="from PIXEL_VOICE_SOURCES"):
        choose_voice_sources({"tim_fletcher": 10})
    monkeypatch.setenv("PIXEL_VOICE_SOURCES", '["other"]')  # a set source need not lead
    assert choose_voice_sources({"tim_fletcher": 10, "other": 5}).sources == ("other",)


def test_a_corpus_may_declare_its_voice_sources_in_its_data_directory(tmp_path):
    (tmp_path / "voice_sources.json").write_text(json.dumps(["b"]), encoding="utf-8")
    choice = choose_voice_sources({"a": 100, "b": 90}, data_dir=tmp_path)
    assert choice.sources == ("b",) and choice.origin == "the corpus's voice_sources.json"
    assert choose_voice_sources({"a": 100, "b": 90}, ["a"], data_dir=tmp_path).sources == ("a",)  # the setting wins


def test_an_empty_corpus_has_an_empty_voice_set_and_the_choice_round_trips(tmp_path):
    empty = choose_voice_sources({})
    assert empty.sources == () and "stage 3 is empty" in empty.describe()
    choice = choose_voice_sources({"x": 30})
    path = tmp_path / "choice.json"
    path.write_text(json.dumps(choice.to_dict()), encoding="utf-8")
    assert records.read_voice_choice(path) == choice
    with pytest.raises(FileNotFoundError, match="materialize raw_segments first"):
        records.read_voice_choice(tmp_path / "missing.json")


def test_the_sample_corpus_leader_is_detected_without_a_setting():
    files, _ = seg.list_segment_inputs(SAMPLE_DATA_DIR, seg.SegmentSettings())
    counts: dict[str, int] = {}
    for item in files:
        rows = seg.load_input_file(item, seg.SegmentSettings()).rows
        for source in rows["source"] if rows is not None else []:
            counts[source] = counts.get(source, 0) + 1
    assert not (SAMPLE_DATA_DIR / "voice_sources.json").exists()
    assert choose_voice_sources(counts).sources == ("Healing Minds with Dr. Lena Hart",)


def test_no_channel_name_of_the_sample_corpus_in_the_code():
    names = json.loads((SAMPLE_DATA_DIR / "transcripts" / "sources.json").read_text(encoding="utf-8")).values()
    code = "\n".join(p.read_text(encoding="utf-8") for p in (REPO_ROOT / "pixel_pipeline").rglob("*.py"))
    assert [n for n in set(names) if n in code] == []
    assert not hasattr(records, "MAIN_EDUCATOR_SOURCE") and not hasattr(records, "DEFAULT_VOICE_SOURCES")


def test_voice_choice_is_a_plain_record():
    choice = VoiceChoice(("a",), "asset setting", {"a": 3}, 10)
    assert VoiceChoice.from_dict(choice.to_dict()) == choice and choice.to_dict()["description"] == choice.describe()
