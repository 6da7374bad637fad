"""Loaders never lose a valid row: a battery of bad counseling files, read row by row, against an independent count.

Each case is one file; every valid row in it must load, every bad row must be rejected alone with its reason,
and rows in (counted here straight from the bytes, not through the loaders) = rows kept + rows rejected.
"""

from __future__ import annotations

import json
import os

import pandas as pd

from pixel_pipeline.ingest import conversations as conv
from pixel_pipeline.ingest import segments as seg
from pixel_pipeline.ingest.inputs import scan_input_folder

SETTINGS = conv.ConversationSettings()
Q = "I keep replaying every conversation at night. How do I stop?"
A = "Write the thoughts down an hour before bed, then tell yourself they will be there in the morning."


def _questions(n: int, tag: str) -> list[tuple[str, str]]:
    return [(f"{tag} question {i}: why do I feel anxious before work?", f"{tag} answer {i}: name the worry, then breathe slowly.") for i in range(n)]


def _csv(rows: list[tuple[str, str]]) -> str:
    return "Context,Response\n" + "".join(f'"{q}","{a}"\n' for q, a in rows)


def _battery(folder) -> dict[str, list[str]]:
    """Write the bad files; return {file: expected reject reason prefixes} (the other rows must all load)."""
    folder.mkdir()
    expected: dict[str, list[str]] = {}
    (folder / "a_good.csv").write_text(_csv(_questions(3, "good")), encoding="utf-8")
    expected["a_good.csv"] = []
    (folder / "b_bom.csv").write_bytes("\ufeff".encode() + _csv(_questions(2, "bom")).encode())
    expected["b_bom.csv"] = []
    # one row with a trailing reviewer note: a field more than the header; never shifted into prompt / response
    ragged = _csv(_questions(2, "ragged")) + f'"{Q}","{A}","reviewer: check this answer"\n' + '"short row only"\n'
    (folder / "c_ragged.csv").write_text(ragged, encoding="utf-8")
    expected["c_ragged.csv"] = ["extra_fields", "missing_fields"]
    # an unterminated quote must not swallow the rows after it
    unterminated = "Context,Response\n" + '"I feel stuck and sad,nobody answers\n' + "".join(f'"{q}","{a}"\n' for q, a in _questions(2, "after"))
    (folder / "d_unterminated.csv").write_text(unterminated, encoding="utf-8")
    expected["d_unterminated.csv"] = ["malformed_csv_row"]
    # one latin-1 byte in one row
    latin = _csv(_questions(2, "latin")).encode() + b'"caf\xe9 question?","an answer"\n'
    (folder / "e_latin1.csv").write_bytes(latin)
    expected["e_latin1.csv"] = ["invalid_utf8"]
    lines = [json.dumps({"Context": q, "Response": a}) for q, a in _questions(3, "jsonl")]
    (folder / "f_lines.jsonl").write_text("\n".join([lines[0], "{not json", lines[1], "[1, 2]", "", lines[2]]) + "\n", encoding="utf-8")
    expected["f_lines.jsonl"] = ["invalid_json_line", "not_an_object"]
    items = [{"Context": q, "Response": a} for q, a in _questions(3, "json")]
    text = json.dumps(items, indent=2)
    broken = text.replace('"Response": "json answer 1', '"Response": json answer 1', 1)  # one item loses a quote
    (folder / "g_items.json").write_text(broken, encoding="utf-8")
    expected["g_items.json"] = ["invalid_json_item"]
    pd.DataFrame({"Context": ["parquet q1?", "parquet q2?"], "Response": ["an answer", ""]}).to_parquet(folder / "h_rows.parquet")
    expected["h_rows.parquet"] = ["empty_text"]
    (folder / "i_columns.csv").write_text("question,answer\nq1,a1\nq2,a2\n", encoding="utf-8")
    expected["i_columns.csv"] = ["missing_column", "missing_column"]
    zero_width = f'"{Q}\u200b\u202e","{A}\u2066"\n'.replace(Q, "zero width: " + Q)
    (folder / "j_invisible.csv").write_text("Context,Response\n" + zero_width, encoding="utf-8")
    expected["j_invisible.csv"] = []
    (folder / "k_header.csv").write_text('"Context,Response\nq1,a1\nq2,a2\n', encoding="utf-8")  # the header's quote never closes
    expected["k_header.csv"] = ["malformed_csv_header", "malformed_csv_header"]
    return expected


def _independent_count(path) -> int:
    """Rows in one battery file, counted without the loaders: physical lines / list items / Parquet metadata."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = [line for line in text.split("\n") if line.strip()]
    if path.suffix == ".csv":
        return len(lines) - 1  # the battery's CSVs have no multi-line fields
    if path.suffix == ".jsonl":
        return len(lines)
    return sum(1 for line in lines if line.startswith("  {"))  # json.dumps(indent=2): one item per "  {"


def test_every_valid_row_loads_and_every_bad_row_is_rejected_alone_with_its_reason(tmp_path):
    folder = tmp_path / "counseling"
    expected = _battery(folder)
    results, _ = conv.load_counseling(folder, tmp_path, SETTINGS)
    by_file = {r.input_file.split("/")[-1]: r for r in results}
    assert sorted(by_file) == sorted(expected)
    for name, reasons in expected.items():
        result = by_file[name]
        assert result.file_error is None, (name, result.file_error)  # no file is lost whole
        got = sorted(str(r[0]).split(":")[0] for r in result.rejects["reasons"])
        assert got == sorted(reasons), (name, list(result.rejects["reasons"]))
        rows_in = _independent_count(folder / name)
        assert result.rows_in == rows_in == len(result.rows) + len(result.rejects), name
    rows, rejects = conv.combine_conversation_results(results, "counseling", "counseling_conversations")
    total = sum(_independent_count(folder / n) for n in expected)
    assert len(rows) + len(rejects) == total == 30
    prompts = set(rows["prompt"])
    for tag, n in (("good", 3), ("bom", 2), ("ragged", 2), ("after", 2), ("latin", 2), ("jsonl", 3)):
        assert {q for q, _ in _questions(n, tag)} <= prompts, tag
    assert {q for i, (q, _) in enumerate(_questions(3, "json")) if i != 1} <= prompts
    # the ragged row was rejected, never shifted: its answer is no prompt and its note no response
    assert A not in prompts and not rows["response"].str.contains("reviewer:").any()
    assert rows.loc[rows["prompt"].str.startswith("bom question 0"), "prompt"].iloc[0] == "bom question 0: why do I feel anxious before work?"
    invisible = rows[rows["prompt"].str.startswith("zero width")]
    assert len(invisible) == 1 and invisible["prompt"].iloc[0] == "zero width: " + Q and invisible["response"].iloc[0] == A


def test_a_reject_names_the_line_and_what_was_wrong(tmp_path):
    folder = tmp_path / "counseling"
    _battery(folder)
    results, _ = conv.load_counseling(folder, tmp_path, SETTINGS)
    reasons = {r.input_file.split("/")[-1]: [x for rs in r.rejects["reasons"] for x in rs] for r in results}
    assert reasons["c_ragged.csv"] == ["extra_fields: line 4 has 3 fields, the header has 2", "missing_fields: line 5 has 1 fields, the header has 2"]
    assert reasons["d_unterminated.csv"][0].startswith("malformed_csv_row: line 2:")
    assert reasons["f_lines.jsonl"][0].startswith("invalid_json_line: line 2:")
    assert reasons["g_items.json"][0].startswith("invalid_json_item:")
    assert reasons["e_latin1.csv"] == ["invalid_utf8: Context holds bytes that are not valid UTF-8"]


def test_cot_reads_a_broken_list_item_by_item(tmp_path):
    folder = tmp_path / "cot"
    folder.mkdir()
    good = [{"conversation": [{"role": "user", "content": f"Why {i}?"}, {"role": "assistant", "content": f"Because {i}."}]} for i in range(3)]
    text = json.dumps(good, indent=2).replace('"Because 1."', '"Because 1.', 1)
    (folder / "a.json").write_text(text, encoding="utf-8")
    (folder / "b.json").write_text(json.dumps(good[:1], indent=2)[:-3], encoding="utf-8")  # truncated: no closing ]
    results = conv.load_cot(folder, tmp_path, SETTINGS)
    assert [(r.input_file, r.rows_in, r.file_error) for r in results] == [("cot/a.json", 3, None), ("cot/b.json", 1, None)]
    rows, rejects = conv.combine_conversation_results(results, "cot", "cot_conversations")
    assert list(rows["prompt"]) == ["Why 0?", "Why 2?"]  # the items around the broken one still load
    assert [str(r[0]).split(":")[0] for r in rejects["reasons"]] == ["invalid_json_item", "invalid_json_item"]


def test_the_data_directory_is_a_boundary(tmp_path, monkeypatch):
    data = tmp_path / "data"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("root:x:0:0:root:/root:/bin/bash\n" * 30, encoding="utf-8")
    (outside / "segments.json").write_text("[]", encoding="utf-8")
    (data / "transcripts").mkdir(parents=True)
    (data / "training_segments").mkdir()
    (data / "transcripts" / "talk.txt").write_text("A real talk. " * 50, encoding="utf-8")
    os.symlink(outside / "secret.txt", data / "transcripts" / "x.txt")
    os.symlink(data / "transcripts" / "talk.txt", data / "transcripts" / "inside_link.txt")
    os.symlink(tmp_path / "missing.json", data / "training_segments" / "dangling.json")
    os.symlink(outside / "segments.json", data / "training_segments" / "linked.json")
    (data / "training_segments" / "folder.json").mkdir()
    monkeypatch.delenv("PIXEL_ALLOW_OUTSIDE_DATA_DIR", raising=False)
    files, notes = seg.list_segment_inputs(data, seg.SegmentSettings())
    assert [f.relative_name for f in files] == ["transcripts/inside_link.txt", "transcripts/talk.txt"]
    text = "\n".join(notes)
    assert "skipped transcripts/x.txt: refused: resolves outside PIXEL_DATA_DIR" in text
    assert "skipped training_segments/linked.json: refused: resolves outside PIXEL_DATA_DIR" in text
    assert "skipped training_segments/dangling.json: dangling link" in text
    assert "skipped training_segments/folder.json: a directory, not an input file" in text
    monkeypatch.setenv("PIXEL_ALLOW_OUTSIDE_DATA_DIR", "1")  # the setting that allows links out
    files, _ = scan_input_folder(data / "transcripts", data, (".txt",))
    assert [f.name for f in files] == ["inside_link.txt", "talk.txt", "x.txt"]


def test_transcripts_lose_zero_width_and_bidi_characters(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Grief comes\u200b in waves.\u202e Let it\ufeff move through you, the way weather does. " * 20, encoding="utf-8")
    result = seg.segment_transcript_file(path, "transcripts/t.txt", seg.SegmentSettings(), "Some Channel")
    text = " ".join(result.rows["text"])
    assert "\u200b" not in text and "\u202e" not in text and "\ufeff" not in text and "Grief comes in waves." in text
