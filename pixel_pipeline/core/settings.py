"""Where inputs are read and outputs written (see docs/CONTRACTS.md).

Resolved at call time, not import time, so tests and the sensor can point the same code at another corpus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = "data"
DEFAULT_OUTPUT_DIR = "output"

# Input folders under PIXEL_DATA_DIR (each optional).
SEGMENTS_DIR = "training_segments"
TRANSCRIPTS_DIR = "transcripts"
COUNSELING_DIR = "counseling"
COT_DIR = "cot"
REVIEW_DIR = "review"
# Dagster run config a corpus may carry in its root (the sample's lowers the training-size minimums); `cli run`
# passes it with -c
CORPUS_RUN_CONFIG = "run_config.yaml"


@dataclass(frozen=True)
class PipelinePaths:
    """The one place that knows the on-disk layout of inputs and outputs."""

    data_dir: Path
    output_dir: Path

    @classmethod
    def from_env(cls, data_dir: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None) -> "PipelinePaths":
        data = Path(data_dir or os.environ.get("PIXEL_DATA_DIR") or DEFAULT_DATA_DIR)
        out = Path(output_dir or os.environ.get("PIXEL_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR)
        return cls(data_dir=data.expanduser().resolve(), output_dir=out.expanduser().resolve())

    # ---- inputs
    def input_dir(self, name: str) -> Path:
        return self.data_dir / name

    # ---- outputs
    def table(self, name: str) -> Path:
        """Parquet file of an asset's main table: output/tables/<asset>.parquet."""
        return self.output_dir / "tables" / f"{name}.parquet"

    def read_table(self, name: str):
        """The upstream table `name` as a DataFrame; a clear error naming the asset to materialize when missing."""
        from pixel_pipeline.core.io import read_parquet

        path = self.table(name)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: materialize `{name}` first")
        return read_parquet(path)

    def write_outputs(self, name: str, table=None, rejects=None, report: dict | None = None,
                      report_file: str = "summary.json") -> dict[str, Path]:
        """Write what an asset produced (its table, its rejects, its report: those given) and return their paths under
        the metadata keys every asset uses: `path`, `rejects_path`, `report_path`."""
        from pixel_pipeline.core.io import write_json, write_parquet

        written = {}
        if table is not None:
            written["path"] = write_parquet(table, self.table(name))
        if rejects is not None:
            written["rejects_path"] = write_parquet(rejects, self.rejects(name))
        if report is not None:
            written["report_path"] = write_json(report, self.report_dir(name) / report_file)
        return written

    def rejects(self, stage: str) -> Path:
        """Parquet file of rows dropped at one stage: output/rejects/<stage>.parquet (schema in core.rejects)."""
        return self.output_dir / "rejects" / f"{stage}.parquet"

    def report_dir(self, name: str) -> Path:
        return self.output_dir / "reports" / name

    @property
    def voice_choice_file(self) -> Path:
        """The voice sources raw_segments resolved (core.records.VoiceChoice); curation and splits read it."""
        return self.report_dir("raw_segments") / "voice_sources.json"

    @property
    def exports_dir(self) -> Path:
        return self.output_dir / "exports"

    @property
    def cache_dir(self) -> Path:
        return self.output_dir / "cache"

    @property
    def models_dir(self) -> Path:
        return self.output_dir / "models"

    def training_dir(self, name: str) -> Path:
        return self.output_dir / "training" / name
