"""Outputs a person opens or a trainer reads are safe: no review cell runs as a formula, no folder is ever missing
while it is replaced."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time

import pandas as pd

from pixel_pipeline.core.io import swap_in_dir
from pixel_pipeline.curation.review import escape_formula, spreadsheet_safe


def test_review_cells_that_start_a_formula_are_escaped_the_owasp_way():
    cells = ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "plain", "a=b", ""]
    assert [escape_formula(c) for c in cells] == [
        "'=HYPERLINK(\"http://x\")", "'+1", "'-2+3", "'@SUM(A1)", "'\tTAB", "'\rCR", "plain", "a=b", ""]
    sample = pd.DataFrame({"prompt": ["=cmd|' /C calc'!A0", "How do I sleep?"], "alignment": [0.5, -0.25]})
    text = spreadsheet_safe(sample).to_csv(index=False)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["prompt"] == "'=cmd|' /C calc'!A0" and rows[1]["prompt"] == "How do I sleep?"
    assert rows[1]["alignment"] == "-0.25"  # numbers are numbers, not text to escape
    assert sample.loc[0, "prompt"].startswith("=")  # the table itself keeps the text


def test_a_folder_swapped_in_is_never_missing_for_a_reader(tmp_path):
    """A reader in another process polls the folder while it is replaced 300 times: it never finds it missing."""
    final = tmp_path / "exports"
    final.mkdir()
    (final / "manifest.json").write_text("old", encoding="utf-8")
    probe = (
        "import os, sys, time\n"
        f"path, stop = {str(final / 'manifest.json')!r}, {str(tmp_path / 'stop')!r}\n"
        "missing = 0\n"
        "while not os.path.exists(stop):\n"
        "    missing += not os.path.exists(path)\n"
        "print(missing)\n"
    )
    reader = subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    for i in range(300):
        build = tmp_path / f".exports.{i}"
        build.mkdir()
        (build / "manifest.json").write_text(f"new {i}", encoding="utf-8")
        swap_in_dir(build, final)
    (tmp_path / "stop").touch()
    out, _ = reader.communicate(timeout=30)
    assert int(out) == 0
    assert (final / "manifest.json").read_text(encoding="utf-8") == "new 299"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "stop"]
