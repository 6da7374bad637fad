"""`python -m pixel_pipeline.cli run|ui`: the Quickstart entry points.

`run` materializes every asset with the real Dagster CLI (the same command as in docs/CONTRACTS.md), against
PIXEL_DATA_DIR / PIXEL_OUTPUT_DIR, then prints where each output landed. Run history is kept in DAGSTER_HOME
(default .dagster_home/), so `ui` shows the runs afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pixel_pipeline.core.settings import CORPUS_RUN_CONFIG, PipelinePaths


def _dagster_env() -> dict[str, str]:
    env = dict(os.environ)
    home = Path(env.get("DAGSTER_HOME") or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()
    env["DAGSTER_HOME"] = str(home)
    return env


def _dagster_bin() -> str:
    return str(Path(sys.executable).with_name("dagster"))


def run(select: str, configs: list[str] | None = None) -> int:
    paths = PipelinePaths.from_env()
    print(f"pixel_pipeline: inputs  {paths.data_dir}")
    print(f"pixel_pipeline: outputs {paths.output_dir}")
    cmd = [_dagster_bin(), "asset", "materialize", "-m", "pixel_pipeline.definitions", "--select", select]
    corpus_config = paths.data_dir / CORPUS_RUN_CONFIG
    if corpus_config.is_file():  # a corpus's own settings travel with it (data/run_config.yaml for the sample)
        cmd += ["-c", str(corpus_config)]
    for extra in configs or []:  # later files win where they set the same key
        if not Path(extra).is_file():
            print(f"pixel_pipeline: run config {extra} not found", file=sys.stderr)
            return 2
        cmd += ["-c", str(extra)]
    print("+", " ".join(cmd), flush=True)
    code = subprocess.call(cmd, env=_dagster_env())
    print_outputs(paths)
    if code != 0:
        print(f"pixel_pipeline: materialization failed (exit {code}); see the log above", file=sys.stderr)
    return code


def print_outputs(paths: PipelinePaths) -> None:
    root = paths.output_dir
    if not root.exists():
        print("pixel_pipeline: no outputs written")
        return
    print(f"\npixel_pipeline: outputs under {root}")
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "cache"):
        files = [f for f in folder.rglob("*") if f.is_file() and not f.name.startswith(".")]
        size = sum(f.stat().st_size for f in files)
        print(f"  {folder.name + '/':<12} {len(files):>5} files {size / 1e6:>9.2f} MB")
        if folder.name in ("exports", "reports"):  # what a user opens first: every file at the top, each subfolder
            for entry in sorted(folder.iterdir()):
                if entry.is_dir():
                    n = sum(1 for f in entry.rglob("*") if f.is_file())
                    print(f"      {entry.relative_to(root)}/  ({n} files)")
                elif not entry.name.startswith("."):
                    print(f"      {entry.relative_to(root)}")


def ui() -> int:
    cmd = [_dagster_bin(), "dev", "-w", "workspace.yaml"]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, env=_dagster_env())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pixel_pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="materialize every asset on PIXEL_DATA_DIR and print where outputs are")
    p_run.add_argument("--select", default="*", help="Dagster asset selection (default: everything)")
    p_run.add_argument("--config", action="append", default=[], metavar="FILE",
                       help="extra Dagster run config YAML, merged after the corpus's own (repeatable)")
    sub.add_parser("ui", help="open the Dagster UI (dagster dev -w workspace.yaml)")
    args = parser.parse_args(argv)
    return run(args.select, args.config) if args.command == "run" else ui()


if __name__ == "__main__":
    raise SystemExit(main())
